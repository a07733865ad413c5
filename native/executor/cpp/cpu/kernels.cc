#include "cpu/kernels.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace tandem::cpu {
namespace {

#if defined(__AVX512F__)
constexpr int kLanes = 16;
using Vec = __m512;
inline Vec vzero() { return _mm512_setzero_ps(); }
inline Vec vload(const float* p) { return _mm512_loadu_ps(p); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline float vsum(Vec v) {
  // Fixed tree: 16 -> 8 -> 4 -> 2 -> 1.
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  for (int w = 8; w >= 1; w /= 2)
    for (int i = 0; i < w; i++) t[i] += t[i + w];
  return t[0];
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8;
using Vec = __m256;
inline Vec vzero() { return _mm256_setzero_ps(); }
inline Vec vload(const float* p) { return _mm256_loadu_ps(p); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline float vsum(Vec v) {
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
  return _mm_cvtss_f32(s1);
}
#else
constexpr int kLanes = 4;
struct Vec {
  float v[4];
};
inline Vec vzero() { return Vec{{0, 0, 0, 0}}; }
inline Vec vload(const float* p) { return Vec{{p[0], p[1], p[2], p[3]}}; }
inline Vec vfma(Vec a, Vec b, Vec c) {
  for (int i = 0; i < 4; i++) c.v[i] = std::fma(a.v[i], b.v[i], c.v[i]);
  return c;
}
inline float vsum(Vec v) { return (v.v[0] + v.v[2]) + (v.v[1] + v.v[3]); }
#endif

// One MR x NR block of y over the full K: accumulators in registers, then one fixed reduction
// per element, then the K tail in scalar order. Every (m, n) therefore sums identically
// whatever MR and NR are.
template <int MR, int NR>
inline void microKernel(const float* x, int64_t ldx, const float* W, int64_t ldw, int64_t K, const float* bias,
                        float* y, int64_t ldy) {
  Vec acc[MR][NR];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) acc[i][j] = vzero();
  const int64_t kVec = K - K % kLanes;
  for (int64_t k = 0; k < kVec; k += kLanes) {
    Vec w[NR];
    for (int j = 0; j < NR; j++) w[j] = vload(W + j * ldw + k);
    for (int i = 0; i < MR; i++) {
      Vec xv = vload(x + i * ldx + k);
      for (int j = 0; j < NR; j++) acc[i][j] = vfma(xv, w[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; i++) {
    for (int j = 0; j < NR; j++) {
      float s = vsum(acc[i][j]);
      for (int64_t k = kVec; k < K; k++) s += x[i * ldx + k] * W[j * ldw + k];
      if (bias != nullptr) s += bias[j];
      y[i * ldy + j] = s;
    }
  }
}

template <int MR>
inline void rowsBlock(const float* x, int64_t K, const float* W, int64_t n0, int64_t n1, const float* bias, float* y,
                      int64_t N) {
  constexpr int NR = MR == 1 ? 4 : 4;
  int64_t n = n0;
  for (; n + NR <= n1; n += NR)
    microKernel<MR, NR>(x, K, W + n * K, K, K, bias ? bias + n : nullptr, y + n, N);
  for (; n < n1; n++) microKernel<MR, 1>(x, K, W + n * K, K, K, bias ? bias + n : nullptr, y + n, N);
}

}  // namespace

void matmulNT(const float* x, int64_t M, int64_t K, const float* W, int64_t N, const float* bias, float* y,
              int numThreads) {
  // Tile N so a tile of W (nTile rows x K) stays in L2 while every block of 4 rows of x passes it.
  const int64_t nTile = M == 1 ? 64 : std::max<int64_t>(16, std::min<int64_t>(64, (256 * 1024) / (K * 4) / 4 * 4));
  const int64_t numTiles = (N + nTile - 1) / nTile;
  // Dynamic chunks of tiles: on a shared machine one thread may be preempted, and a static split
  // would make the whole call wait for it. Which thread computes a tile never changes its values.
#pragma omp parallel for schedule(dynamic, 4) num_threads(numThreads) if (M * N * K > 32768)
  for (int64_t t = 0; t < numTiles; t++) {
    const int64_t n0 = t * nTile;
    const int64_t n1 = std::min(N, n0 + nTile);
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) rowsBlock<4>(x + m * K, K, W, n0, n1, bias, y + m * N, N);
    for (; m < M; m++) rowsBlock<1>(x + m * K, K, W, n0, n1, bias, y + m * N, N);
  }
}

void matmulNTReference(const float* x, int64_t M, int64_t K, const float* W, int64_t N, const float* bias, float* y) {
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < K; k++) s += static_cast<double>(x[m * K + k]) * W[n * K + k];
      y[m * N + n] = static_cast<float>(s);
    }
}

float dot(const float* a, const float* b, int64_t n) {
  Vec acc = vzero();
  const int64_t nVec = n - n % kLanes;
  for (int64_t k = 0; k < nVec; k += kLanes) acc = vfma(vload(a + k), vload(b + k), acc);
  float s = vsum(acc);
  for (int64_t k = nVec; k < n; k++) s += a[k] * b[k];
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void rmsNorm(const float* x, const float* w, int64_t n, float eps, float* out) {
  double sumSq = 0.0;
  for (int64_t i = 0; i < n; i++) sumSq += static_cast<double>(x[i]) * x[i];
  const float variance = static_cast<float>(sumSq / static_cast<double>(n));
  const float inv = 1.0f / std::sqrt(variance + eps);
  for (int64_t i = 0; i < n; i++) out[i] = w[i] * (x[i] * inv);
}

double measureMemoryBandwidth(int64_t numElements, int repeats, int numThreads) {
  auto alloc = [&]() {
    return std::unique_ptr<float, decltype(&std::free)>(
        static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(numElements) * 4)), &std::free);
  };
  auto a = alloc(), b = alloc(), c = alloc();
  float* pa = a.get();
  float* pb = b.get();
  float* pc = c.get();
#pragma omp parallel for schedule(static) num_threads(numThreads)
  for (int64_t i = 0; i < numElements; i++) {
    pa[i] = 0.0f;
    pb[i] = 1.0f;
    pc[i] = 2.0f;
  }
  double best = 0.0;
  const float s = 3.0f;
  for (int r = 0; r < repeats; r++) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(static) num_threads(numThreads)
    for (int64_t i = 0; i < numElements; i++) pa[i] = pb[i] + s * pc[i];
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 3.0 * 4.0 * static_cast<double>(numElements) / sec);
  }
  return best;
}

}  // namespace tandem::cpu
