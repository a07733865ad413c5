// Paged attention for decode steps (one new token a sequence), all q heads of a kv group in one
// block: the block's 4 warps take the sequence's key tiles in turn (32 keys, one a lane). A lane
// scores its key against every head of the group straight from global memory (16-byte loads of
// its K row, q from shared memory), the warp keeps an online softmax per head, and P V walks the
// tile's keys with each lane owning D/32 consecutive output dims (one coalesced V row a key).
// The warps' partial results are merged in shared memory; with split-KV (gridDim.z > 1) the
// block writes its split's share for mergeAttentionSplits. Float32 throughout, like attention.cu.
#include <type_traits>

#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace tandem::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kTile = 32;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// N consecutive elements of T at p (N * sizeof(T) in {2, 4, 8, 16} bytes, aligned) as floats.
template <typename T, int N>
__device__ __forceinline__ void loadFloats(const T* p, float* out) {
  constexpr int kBytes = N * static_cast<int>(sizeof(T));
  static_assert(kBytes == 2 || kBytes == 4 || kBytes == 8 || kBytes == 16 || kBytes == 32 || kBytes == 64);
  if constexpr (kBytes <= 16) {
    using Word = std::conditional_t<kBytes == 16, uint4,
                                    std::conditional_t<kBytes == 8, uint2,
                                                       std::conditional_t<kBytes == 4, uint32_t, uint16_t>>>;
    const Word raw = *reinterpret_cast<const Word*>(p);
    const T* values = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int e = 0; e < N; e++) out[e] = toFloat(values[e]);
  } else {
    constexpr int kHalf = N / 2;
    loadFloats<T, kHalf>(p, out);
    loadFloats<T, kHalf>(p + kHalf, out + kHalf);
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(kWarps * 32) pagedDecodeKernel(AttentionArgs a) {
  constexpr int kVec = 16 / sizeof(T);    // elements of one 16-byte load
  constexpr int kDimsPerLane = D / 32;    // output dims a lane owns (consecutive)
  constexpr int kMaxG = kDecodeMaxHeadsPerBlock;
  __shared__ float qS[kMaxG][D];          // pre-scaled by scale * log2(e)
  __shared__ float pS[kWarps][kMaxG][kTile];
  __shared__ float mS[kWarps][kMaxG], lS[kWarps][kMaxG];
  __shared__ float oS[kWarps][kMaxG][D];

  const AttentionBlock blk = a.blocks[blockIdx.x];
  const int G = a.headsPerBlock;
  const int32_t firstHead = blockIdx.y * G;
  const int32_t kvHead = firstHead / (a.numHeads / a.numKvHeads);
  const int32_t token = blk.firstToken;
  const int32_t keysPerSplit = ((blk.numKeys + a.numSplits - 1) / a.numSplits + kTile - 1) / kTile * kTile;
  const int32_t keyBegin = blockIdx.z * keysPerSplit;
  const int32_t keyEnd = min(blk.numKeys, keyBegin + keysPerSplit);  // numKeys = position + 1
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  const T* q = static_cast<const T*>(a.q);
  const float qScale = a.scale * kLog2e;
  for (int i = threadIdx.x; i < G * D; i += blockDim.x) {
    const int g = i / D, d = i % D;
    qS[g][d] = toFloat(q[(int64_t{token} * a.numHeads + firstHead + g) * D + d]) * qScale;
  }
  __syncthreads();

  const int32_t* pageTable = a.pageTables + blk.pageTableOffset;
  const T* kCache = static_cast<const T*>(a.kCache);
  const T* vCache = static_cast<const T*>(a.vCache);
  const int64_t slotStride = int64_t{a.numKvHeads} * D;
  const int64_t headOffset = int64_t{kvHead} * D;
  auto rowOf = [&](int32_t key) {
    return (int64_t{pageTable[key / a.pageSize]} * a.pageSize + key % a.pageSize) * slotStride + headOffset;
  };

  float m[kMaxG], l[kMaxG], o[kMaxG][kDimsPerLane];
#pragma unroll
  for (int g = 0; g < kMaxG; g++) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int e = 0; e < kDimsPerLane; e++) o[g][e] = 0.0f;
  }

  for (int32_t k0 = keyBegin + warp * kTile; k0 < keyEnd; k0 += kWarps * kTile) {
    const int32_t key = k0 + lane;
    const bool valid = key < keyEnd;
    float s[kMaxG];
#pragma unroll
    for (int g = 0; g < kMaxG; g++) s[g] = 0.0f;
    if (valid) {
      const T* kRow = kCache + rowOf(key);
#pragma unroll 4
      for (int v = 0; v < D / kVec; v++) {
        float kf[kVec];
        loadFloats<T, kVec>(kRow + v * kVec, kf);
#pragma unroll
        for (int g = 0; g < kMaxG; g++) {
          if (g >= G) break;
#pragma unroll
          for (int e = 0; e < kVec; e++) s[g] = fmaf(qS[g][v * kVec + e], kf[e], s[g]);
        }
      }
    }
    // Online softmax per head over this tile; a lane past keyEnd scores -inf.
#pragma unroll
    for (int g = 0; g < kMaxG; g++) {
      if (g >= G) break;
      const float score = valid ? s[g] : -INFINITY;
      const float newMax = fmaxf(m[g], warpMax(score));  // finite: lane 0's key is valid
      const float p = valid ? exp2f(score - newMax) : 0.0f;
      const float correction = exp2f(m[g] - newMax);     // m = -inf the first time: 0
      l[g] = l[g] * correction + warpSum(p);
      m[g] = newMax;
#pragma unroll
      for (int e = 0; e < kDimsPerLane; e++) o[g][e] *= correction;
      pS[warp][g][lane] = p;
    }
    __syncwarp();
    const int numKeys = min(kTile, keyEnd - k0);
    for (int j = 0; j < numKeys; j++) {
      float vf[kDimsPerLane];
      loadFloats<T, kDimsPerLane>(vCache + rowOf(k0 + j) + lane * kDimsPerLane, vf);
#pragma unroll
      for (int g = 0; g < kMaxG; g++) {
        if (g >= G) break;
        const float p = pS[warp][g][j];
#pragma unroll
        for (int e = 0; e < kDimsPerLane; e++) o[g][e] = fmaf(p, vf[e], o[g][e]);
      }
    }
    __syncwarp();
  }

  // Merge the warps (a warp with no tile has m = -inf, l = 0).
#pragma unroll
  for (int g = 0; g < kMaxG; g++) {
    if (g >= G) break;
    if (lane == 0) {
      mS[warp][g] = m[g];
      lS[warp][g] = l[g];
    }
#pragma unroll
    for (int e = 0; e < kDimsPerLane; e++) oS[warp][g][lane * kDimsPerLane + e] = o[g][e];
  }
  __syncthreads();
  const int64_t slot = (int64_t{blockIdx.z} * gridDim.x + blockIdx.x) * gridDim.y + blockIdx.y;
  for (int i = threadIdx.x; i < G * D; i += blockDim.x) {
    const int g = i / D, d = i % D;
    float maxAll = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; w++) maxAll = fmaxf(maxAll, mS[w][g]);
    float sum = 0.0f, value = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; w++) {
      if (mS[w][g] == -INFINITY) continue;
      const float weight = exp2f(mS[w][g] - maxAll);
      sum += lS[w][g] * weight;
      value += oS[w][g][d] * weight;
    }
    if (a.numSplits > 1) {
      // mergeAttentionSplits works in natural-log units; sum and value are the same either way.
      const int64_t row = slot * kAttentionRowsPerBlock + g;
      a.splitAcc[row * D + d] = value;
      if (d == 0) {
        a.splitMax[row] = maxAll == -INFINITY ? -INFINITY : maxAll * kLn2;
        a.splitSum[row] = sum;
      }
    } else {
      T* out = static_cast<T*>(a.out);
      out[(int64_t{token} * a.numHeads + firstHead + g) * D + d] = fromFloat<T>(value / sum);
    }
  }
}

template <typename T, int D>
void launch(const AttentionArgs& a, DType dtype, cudaStream_t stream) {
  const dim3 grid(a.numBlocks, a.numHeads / a.headsPerBlock, a.numSplits);
  pagedDecodeKernel<T, D><<<grid, kWarps * 32, 0, stream>>>(a);
  CUDA_CHECK_LAST();
  if (a.numSplits > 1) mergeAttentionSplits(a, dtype, stream);
}

template <typename T>
void launchForHeadDim(const AttentionArgs& a, DType dtype, cudaStream_t stream) {
  switch (a.headDim) {
    case 32: return launch<T, 32>(a, dtype, stream);
    case 64: return launch<T, 64>(a, dtype, stream);
    case 128: return launch<T, 128>(a, dtype, stream);
    default: throw InvalidInputError("decode attention: head_dim " + std::to_string(a.headDim) + " unsupported");
  }
}

}  // namespace

bool decodeAttentionSupports(int32_t headDim, int32_t headsPerBlock) {
  return (headDim == 32 || headDim == 64 || headDim == 128) && headsPerBlock <= kDecodeMaxHeadsPerBlock;
}

void pagedDecodeAttention(const AttentionArgs& args, DType dtype, cudaStream_t stream) {
  if (args.numBlocks == 0) return;
  TANDEM_DISPATCH_DTYPE(dtype, T, launchForHeadDim<T>(args, dtype, stream));
}

}  // namespace tandem::cuda
