// Tensor-core causal attention for prefill chunks (bf16 / f16, head_dim 64 or 128), in the
// layout of FlashAttention-2: a block takes up to 64 consecutive new tokens of one sequence and
// one q head; each of its 4 warps owns 16 query rows. S = Q K^T and O += P V are mma.sync
// m16n8k16 with float32 accumulators, the online softmax runs on the accumulator fragments, and
// P is rounded to T before P V (what flash attention, and so transformers' sdpa, does). K and V
// tiles of 64 positions stream through shared memory with cp.async, double buffered, gathered
// through the page table. Decode steps and short chunks stay on attention.cu's kernel.
#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace tandem::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kQueryRows = 16 * kWarps;
static_assert(kQueryRows == kAttentionMmaTokensPerBlock);
constexpr int kKeyTile = 64;
constexpr int kPad = 8;  // elements a row: rows stay 16-byte aligned and land on distinct banks
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ uint32_t packPair(float lo, float hi, __nv_bfloat16*) {
  __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&pair);
}
__device__ __forceinline__ uint32_t packPair(float lo, float hi, __half*) {
  __half2 pair = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&pair);
}

// c += a (16x16, row) * b (16x8, col), float32 accumulators.
__device__ __forceinline__ void mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1, __nv_bfloat16*) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1, __half*) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8x8 b16 matrices, transposed: the B fragments of two adjacent n8 tiles of V.
__device__ __forceinline__ void ldmatrixX4Trans(uint32_t r[4], const void* smemRow) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(smemRow));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// 16 bytes global -> shared, zero-filled when `valid` is false (src must still be a mapped address).
__device__ __forceinline__ void copy16Async(void* smem, const void* src, bool valid) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const int srcBytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(src), "r"(srcBytes));
}
__device__ __forceinline__ void commitAsync() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void waitAsync() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

template <int D>
constexpr size_t mmaSmemBytes() {
  return sizeof(uint16_t) * (kQueryRows + 4 * kKeyTile) * (D + kPad);  // Q, then K and V twice
}

template <typename T, int D>
__global__ void __launch_bounds__(kWarps * 32) prefillAttentionMmaKernel(AttentionArgs a) {
  constexpr int kStride = D + kPad;
  constexpr int kVecPerRow = D / 8;  // 16-byte vectors
  constexpr int kDimSteps = D / 16;  // k16 steps of Q K^T
  constexpr int kDimTiles = D / 8;   // n8 tiles of the output
  constexpr int kKeyTiles = kKeyTile / 8;
  extern __shared__ uint4 smemRaw[];
  T* qS = reinterpret_cast<T*>(smemRaw);  // [kQueryRows][kStride]
  T* kS = qS + kQueryRows * kStride;      // [2][kKeyTile][kStride]
  T* vS = kS + 2 * kKeyTile * kStride;    // [2][kKeyTile][kStride]

  const AttentionBlock blk = a.blocks[blockIdx.x];
  const int32_t head = blockIdx.y;
  const int32_t kvHead = head / (a.numHeads / a.numKvHeads);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;  // mma fragment coordinates
  const T* q = static_cast<const T*>(a.q);
  const T* kCache = static_cast<const T*>(a.kCache);
  const T* vCache = static_cast<const T*>(a.vCache);
  const int32_t* pageTable = a.pageTables + blk.pageTableOffset;
  const int64_t slotStride = int64_t{a.numKvHeads} * D;

  auto loadKeyTile = [&](int buffer, int32_t k0) {
    T* kDst = kS + buffer * kKeyTile * kStride;
    T* vDst = vS + buffer * kKeyTile * kStride;
    for (int v = threadIdx.x; v < kKeyTile * kVecPerRow; v += kWarps * 32) {
      const int j = v / kVecPerRow, d0 = (v % kVecPerRow) * 8;
      const int32_t key = k0 + j;
      const bool valid = key < blk.numKeys;
      const int32_t k = valid ? key : 0;
      const int64_t slot = int64_t{pageTable[k / a.pageSize]} * a.pageSize + k % a.pageSize;
      const int64_t idx = slot * slotStride + int64_t{kvHead} * D + d0;
      copy16Async(kDst + j * kStride + d0, kCache + idx, valid);
      copy16Async(vDst + j * kStride + d0, vCache + idx, valid);
    }
  };

  // Q rows (zero past the block's tokens), then the first key tile, in flight together.
  for (int v = threadIdx.x; v < kQueryRows * kVecPerRow; v += kWarps * 32) {
    const int r = v / kVecPerRow, d0 = (v % kVecPerRow) * 8;
    const bool valid = r < blk.numTokens;
    const int32_t token = blk.firstToken + (valid ? r : 0);
    copy16Async(qS + r * kStride + d0, q + (int64_t{token} * a.numHeads + head) * D + d0, valid);
  }
  loadKeyTile(0, 0);
  commitAsync();

  // Positions of this thread's two rows (g and g + 8 of the warp's 16); rows past the block's
  // tokens take the last token's, so their arithmetic stays finite (they are never written).
  const int32_t lastRow = blk.numTokens - 1;
  const int r0 = warp * 16;
  const int32_t rowPos[2] = {a.positions[blk.firstToken + min(r0 + g, lastRow)],
                             a.positions[blk.firstToken + min(r0 + g + 8, lastRow)]};
  const int32_t warpLastPos = a.positions[blk.firstToken + min(r0 + 15, lastRow)];
  const float scaleLog2 = a.scale * kLog2e;

  uint32_t qFrag[kDimSteps][4];
  float o[kDimTiles][4];
  float rowMax[2] = {-INFINITY, -INFINITY}, rowSum[2] = {0.0f, 0.0f};
#pragma unroll
  for (int i = 0; i < kDimTiles; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;

  const int32_t numTiles = (blk.numKeys + kKeyTile - 1) / kKeyTile;
  for (int32_t tile = 0; tile < numTiles; tile++) {
    const int32_t k0 = tile * kKeyTile;
    const int buffer = tile & 1;
    if (tile + 1 < numTiles) loadKeyTile(buffer ^ 1, k0 + kKeyTile);
    commitAsync();
    waitAsync<1>();  // everything but the tile just requested has landed
    __syncthreads();
    if (tile == 0) {
#pragma unroll
      for (int s = 0; s < kDimSteps; s++) {
        const T* rowLo = qS + (r0 + g) * kStride + s * 16 + 2 * t;
        const T* rowHi = rowLo + 8 * kStride;
        qFrag[s][0] = *reinterpret_cast<const uint32_t*>(rowLo);
        qFrag[s][1] = *reinterpret_cast<const uint32_t*>(rowHi);
        qFrag[s][2] = *reinterpret_cast<const uint32_t*>(rowLo + 8);
        qFrag[s][3] = *reinterpret_cast<const uint32_t*>(rowHi + 8);
      }
    }
    if (warpLastPos >= k0) {  // warp-uniform: otherwise the whole tile lies after this warp's rows
      const T* kTile = kS + buffer * kKeyTile * kStride;
      const T* vTile = vS + buffer * kKeyTile * kStride;
      float s[kKeyTiles][4];
#pragma unroll
      for (int n = 0; n < kKeyTiles; n++) {
        s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
        const T* keyRow = kTile + (n * 8 + g) * kStride + 2 * t;
#pragma unroll
        for (int d = 0; d < kDimSteps; d++) {
          const uint32_t b0 = *reinterpret_cast<const uint32_t*>(keyRow + d * 16);
          const uint32_t b1 = *reinterpret_cast<const uint32_t*>(keyRow + d * 16 + 8);
          mma(s[n], qFrag[d], b0, b1, static_cast<T*>(nullptr));
        }
      }
      // Mask, then the online softmax on the fragments (each row's 64 scores live in 4 lanes).
      float tileMax[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int n = 0; n < kKeyTiles; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int32_t key = k0 + n * 8 + 2 * t + (e & 1);
          s[n][e] = key <= rowPos[e >> 1] ? s[n][e] * scaleLog2 : -INFINITY;
          tileMax[e >> 1] = fmaxf(tileMax[e >> 1], s[n][e]);
        }
      }
      float correction[2];
#pragma unroll
      for (int h = 0; h < 2; h++) {
        tileMax[h] = fmaxf(tileMax[h], __shfl_xor_sync(0xffffffffu, tileMax[h], 1));
        tileMax[h] = fmaxf(tileMax[h], __shfl_xor_sync(0xffffffffu, tileMax[h], 2));
        const float newMax = fmaxf(rowMax[h], tileMax[h]);  // finite: key 0 is visible to every row
        correction[h] = exp2f(rowMax[h] - newMax);
        rowMax[h] = newMax;
        rowSum[h] *= correction[h];
      }
#pragma unroll
      for (int n = 0; n < kKeyTiles; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
          s[n][e] = exp2f(s[n][e] - rowMax[e >> 1]);
          rowSum[e >> 1] += s[n][e];  // this lane's share; the quad sums at the end
        }
      }
#pragma unroll
      for (int i = 0; i < kDimTiles; i++) {
        o[i][0] *= correction[0];
        o[i][1] *= correction[0];
        o[i][2] *= correction[1];
        o[i][3] *= correction[1];
      }
      // O += P V: two adjacent score tiles make one A fragment (k16 over keys).
#pragma unroll
      for (int kk = 0; kk < kKeyTile / 16; kk++) {
        const uint32_t p[4] = {packPair(s[2 * kk][0], s[2 * kk][1], static_cast<T*>(nullptr)),
                               packPair(s[2 * kk][2], s[2 * kk][3], static_cast<T*>(nullptr)),
                               packPair(s[2 * kk + 1][0], s[2 * kk + 1][1], static_cast<T*>(nullptr)),
                               packPair(s[2 * kk + 1][2], s[2 * kk + 1][3], static_cast<T*>(nullptr))};
        const T* valueRow = vTile + (kk * 16 + (lane & 15)) * kStride + (lane >> 4) * 8;
#pragma unroll
        for (int i = 0; i < kDimTiles; i += 2) {
          uint32_t b[4];
          ldmatrixX4Trans(b, valueRow + i * 8);
          mma(o[i], p, b[0], b[1], static_cast<T*>(nullptr));
          mma(o[i + 1], p, b[2], b[3], static_cast<T*>(nullptr));
        }
      }
    }
    __syncthreads();  // this buffer is refilled two tiles from now
  }

  T* out = static_cast<T*>(a.out);
#pragma unroll
  for (int h = 0; h < 2; h++) {
    rowSum[h] += __shfl_xor_sync(0xffffffffu, rowSum[h], 1);
    rowSum[h] += __shfl_xor_sync(0xffffffffu, rowSum[h], 2);
    const int r = r0 + g + 8 * h;
    if (r >= blk.numTokens) continue;
    const float inverseSum = 1.0f / rowSum[h];
    T* row = out + (int64_t{blk.firstToken + r} * a.numHeads + head) * D + 2 * t;
#pragma unroll
    for (int i = 0; i < kDimTiles; i++) {
      *reinterpret_cast<uint32_t*>(row + i * 8) =
          packPair(o[i][2 * h] * inverseSum, o[i][2 * h + 1] * inverseSum, static_cast<T*>(nullptr));
    }
  }
}

template <typename T, int D>
void launch(const AttentionArgs& a, cudaStream_t stream) {
  constexpr size_t smemBytes = mmaSmemBytes<D>();
  static bool attributeSet = false;  // per instantiation; raising the limit twice is harmless
  if (!attributeSet) {
    CUDA_CHECK(cudaFuncSetAttribute(prefillAttentionMmaKernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smemBytes)));
    attributeSet = true;
  }
  const dim3 grid(a.numBlocks, a.numHeads);
  prefillAttentionMmaKernel<T, D><<<grid, kWarps * 32, smemBytes, stream>>>(a);
  CUDA_CHECK_LAST();
}

template <typename T>
void launchForHeadDim(const AttentionArgs& a, cudaStream_t stream) {
  switch (a.headDim) {
    case 64: return launch<T, 64>(a, stream);
    case 128: return launch<T, 128>(a, stream);
    default: throw InvalidInputError("prefill attention: head_dim " + std::to_string(a.headDim) + " unsupported");
  }
}

}  // namespace

bool attentionMmaSupports(DType dtype, int32_t headDim) {
  return (dtype == DType::BF16 || dtype == DType::F16) && (headDim == 64 || headDim == 128);
}

void prefillAttentionMma(const AttentionArgs& args, DType dtype, cudaStream_t stream) {
  if (args.numBlocks == 0) return;
  switch (dtype) {
    case DType::BF16: return launchForHeadDim<__nv_bfloat16>(args, stream);
    case DType::F16: return launchForHeadDim<__half>(args, stream);
    default: throw InvalidInputError("prefill attention on tensor cores needs bf16 or f16");
  }
}

}  // namespace tandem::cuda
