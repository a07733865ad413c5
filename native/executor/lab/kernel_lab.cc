// Kernel lab (llm.c style): a plain reference, numbered versions, each validated against the
// reference and then timed. The winner is promoted into cpp/cpu/kernels.cc (version "promoted").
//   lab/run.sh            # builds with -O3 -march=native -fopenmp and runs every case
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cpu/kernels.h"

using namespace tandem;

namespace {

using MatmulFn = std::function<void(const float*, int64_t, int64_t, const float*, int64_t, float*, int)>;

// v1: one row of W at a time, one accumulator (the naive GEMV).
void gemvV1(const float* x, int64_t M, int64_t K, const float* W, int64_t N, float* y, int nt) {
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t n = 0; n < N; n++)
    for (int64_t m = 0; m < M; m++) y[m * N + n] = cpu::dot(x + m * K, W + n * K, K);
}

// v2: 8 rows of W at a time (8 independent accumulators), prefetching the next 8 rows.
void gemvV2(const float* x, int64_t M, int64_t K, const float* W, int64_t N, float* y, int nt) {
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t n0 = 0; n0 < N / 8 * 8; n0 += 8) {
    for (int64_t m = 0; m < M; m++) {
      __m512 acc[8];
      for (int j = 0; j < 8; j++) acc[j] = _mm512_setzero_ps();
      for (int64_t k = 0; k + 16 <= K; k += 16) {
        __m512 xv = _mm512_loadu_ps(x + m * K + k);
        for (int j = 0; j < 8; j++) {
          _mm_prefetch(reinterpret_cast<const char*>(W + (n0 + 8 + j) * K + k), _MM_HINT_T0);
          acc[j] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(W + (n0 + j) * K + k), acc[j]);
        }
      }
      for (int j = 0; j < 8; j++) y[m * N + n0 + j] = _mm512_reduce_add_ps(acc[j]);
    }
  }
  for (int64_t n = N / 8 * 8; n < N; n++)
    for (int64_t m = 0; m < M; m++) y[m * N + n] = cpu::dot(x + m * K, W + n * K, K);
}

// v3..v5: the promoted kernel's per-element order (so any of them keeps batch invariance), with
// NR rows of W per block and optional software prefetch of the block PF rows ahead.
template <int NR, int PF>
void gemvRows(const float* x, int64_t M, int64_t K, const float* W, int64_t N, float* y, int nt) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
  for (int64_t tile = 0; tile < (N + 63) / 64; tile++) {
    const int64_t n1 = std::min<int64_t>(N, tile * 64 + 64);
    int64_t n = tile * 64;
    for (; n + NR <= n1; n += NR) {
      for (int64_t m = 0; m < M; m++) {
        __m512 acc[NR];
        for (int j = 0; j < NR; j++) acc[j] = _mm512_setzero_ps();
        const int64_t kVec = K - K % 16;
        for (int64_t k = 0; k < kVec; k += 16) {
          if (PF > 0)
            for (int j = 0; j < NR; j++) _mm_prefetch(reinterpret_cast<const char*>(W + (n + PF + j) * K + k), _MM_HINT_T0);
          __m512 xv = _mm512_loadu_ps(x + m * K + k);
          for (int j = 0; j < NR; j++) acc[j] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(W + (n + j) * K + k), acc[j]);
        }
        for (int j = 0; j < NR; j++) {
          alignas(64) float t[16];
          _mm512_store_ps(t, acc[j]);
          for (int w = 8; w >= 1; w /= 2)
            for (int i = 0; i < w; i++) t[i] += t[i + w];
          float sum = t[0];
          for (int64_t k = kVec; k < K; k++) sum += x[m * K + k] * W[(n + j) * K + k];
          y[m * N + n + j] = sum;
        }
      }
    }
    for (; n < n1; n++)
      for (int64_t m = 0; m < M; m++) y[m * N + n] = cpu::dot(x + m * K, W + n * K, K);
  }
}

void promoted(const float* x, int64_t M, int64_t K, const float* W, int64_t N, float* y, int nt) {
  cpu::matmulNT(x, M, K, W, N, nullptr, y, nt);
}

struct Case {
  const char* name;
  int64_t M, N, K;
};

void run(const Case& c, const std::vector<std::pair<std::string, MatmulFn>>& versions, int nt) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  // Several copies of W (>= 1 GiB in all) used in turn, so every timed call streams W from DRAM
  // as a real model's layers do, instead of finding it in the last-level cache.
  const int64_t wFloats = c.N * c.K;
  const int64_t numCopies = std::max<int64_t>(1, (256ll << 20) / wFloats);
  std::vector<float> x(c.M * c.K), W(wFloats * numCopies), ref(c.M * c.N), y(c.M * c.N);
  for (auto& v : x) v = dist(rng);
  for (int64_t i = 0; i < wFloats; i++) W[i] = dist(rng);
  for (int64_t copy = 1; copy < numCopies; copy++) std::copy(W.begin(), W.begin() + wFloats, W.begin() + copy * wFloats);
  cpu::matmulNTReference(x.data(), c.M, c.K, W.data(), c.N, nullptr, ref.data());
  std::printf("%s  (M=%ld N=%ld K=%ld, %d threads)\n", c.name, c.M, c.N, c.K, nt);
  // Validate every version, then time them round-robin (5 rounds of ~0.1 s each, best round
  // kept) so a load change on a shared machine hits every version alike.
  const size_t numVersions = versions.size();
  std::vector<double> maxErrs(numVersions), best(numVersions, 1e30);
  for (size_t v = 0; v < numVersions; v++) {
    versions[v].second(x.data(), c.M, c.K, W.data(), c.N, y.data(), nt);
    for (size_t i = 0; i < y.size(); i++)
      maxErrs[v] = std::max(maxErrs[v], static_cast<double>(std::fabs(y[i] - ref[i])));
  }
  int64_t copy = 0;
  for (int round = 0; round < 5; round++) {
    for (size_t v = 0; v < numVersions; v++) {
      int reps = 0;
      auto t0 = std::chrono::steady_clock::now();
      double sec = 0;
      do {
        versions[v].second(x.data(), c.M, c.K, W.data() + (copy++ % numCopies) * wFloats, c.N, y.data(), nt);
        reps++;
        sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      } while (sec < 0.1);
      best[v] = std::min(best[v], sec / reps);
    }
  }
  const double bytes = 4.0 * (c.N * c.K + c.M * c.K + c.M * c.N);
  const double flops = 2.0 * c.M * c.N * c.K;
  for (size_t v = 0; v < numVersions; v++) {
    const bool ok = maxErrs[v] < 1e-3 * std::sqrt(static_cast<double>(c.K));
    std::printf("  %-12s %s maxErr %.2e  %8.3f ms  %7.1f GB/s  %7.1f GFLOP/s\n", versions[v].first.c_str(),
                ok ? "ok  " : "FAIL", maxErrs[v], best[v] * 1e3, bytes / best[v] / 1e9, flops / best[v] / 1e9);
  }
}

}  // namespace

int main() {
  const int nt = omp_get_num_procs();
  std::printf("triad bandwidth: %.1f GB/s\n", cpu::measureMemoryBandwidth(64 << 20, 5, nt) / 1e9);
  std::vector<std::pair<std::string, MatmulFn>> versions = {
      {"v1-naive", gemvV1},          {"v2-8row-pf", gemvV2},          {"v3-nr8", gemvRows<8, 0>},
      {"v4-nr4-pf8", gemvRows<4, 8>}, {"v5-nr2", gemvRows<2, 0>},      {"v6-nr4-pf16", gemvRows<4, 16>},
      {"promoted", promoted}};
  run({"decode gate_up (0.5B)", 1, 9728, 896}, versions, nt);
  run({"decode down (0.5B)", 1, 896, 4864}, versions, nt);
  run({"decode lm_head (0.5B)", 1, 151936, 896}, versions, nt);
  run({"prefill gate_up x64", 64, 9728, 896}, {{"promoted", promoted}}, nt);
  run({"prefill down x256", 256, 896, 4864}, {{"promoted", promoted}}, nt);
  return 0;
}
