// Paged causal attention for prefill chunks (over a cached prefix) and decode steps in one
// kernel. A block takes up to 16 (token, q head) rows that share one kv head, streams that kv
// head's keys and values through shared memory 32 positions at a time, and keeps an online
// softmax per row (float32 throughout). Warp w owns rows w, w+4, w+8, w+12; lane j scores key j
// of the tile, and owns dims j, j+32, ... of the output.
// When the batch has too few blocks to fill the GPU (small decode batches), the keys are split
// over gridDim.z blocks (flash-decoding): each writes its unnormalised output, max and sum for
// its key range, and a second kernel merges the splits.
#include <algorithm>

#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace tandem::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRows = kAttentionRowsPerBlock;
constexpr int kRowsPerWarp = kRows / kWarps;
constexpr int kTile = 32;
constexpr int32_t kMinKeysPerSplit = 128;  // fewer keys a split do not pay for the merge

// Where split `split`'s partial result for row r of this block (x, y) lives.
__device__ __forceinline__ int64_t splitRow(int split, int r) {
  return ((int64_t{split} * gridDim.x + blockIdx.x) * gridDim.y + blockIdx.y) * kRows + r;
}

template <int D>
constexpr size_t attentionSmemBytes() {
  return sizeof(float) * (kRows * D + 2 * kTile * (D + 1));
}

template <typename T, int D>
__global__ void __launch_bounds__(kWarps * 32) pagedAttentionKernel(AttentionArgs a) {
  constexpr int kDimsPerLane = (D + 31) / 32;
  constexpr int kStride = D + 1;  // pad: lane j reads row j, so rows must not share a bank
  extern __shared__ float smem[];
  float* qS = smem;                  // [kRows][D], pre-scaled
  float* kS = qS + kRows * D;        // [kTile][kStride]
  float* vS = kS + kTile * kStride;  // [kTile][kStride]

  const AttentionBlock blk = a.blocks[blockIdx.x];
  // This block's key range: whole tiles, so no tile straddles two splits.
  const int32_t keysPerSplit = ((blk.numKeys + a.numSplits - 1) / a.numSplits + kTile - 1) / kTile * kTile;
  const int32_t keyBegin = blockIdx.z * keysPerSplit;
  const int32_t keyEnd = min(blk.numKeys, keyBegin + keysPerSplit);
  const int32_t group = a.numHeads / a.numKvHeads;
  const int32_t firstHead = blockIdx.y * a.headsPerBlock;
  const int32_t kvHead = firstHead / group;
  const int32_t numRows = blk.numTokens * a.headsPerBlock;
  const T* q = static_cast<const T*>(a.q);

  for (int i = threadIdx.x; i < kRows * D; i += blockDim.x) {
    const int r = i / D, d = i % D;
    float v = 0.0f;
    if (r < numRows) {
      const int32_t t = blk.firstToken + r / a.headsPerBlock, h = firstHead + r % a.headsPerBlock;
      v = toFloat(q[(int64_t{t} * a.numHeads + h) * D + d]) * a.scale;
    }
    qS[i] = v;
  }

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int32_t rowPos[kRowsPerWarp];
  float rowMax[kRowsPerWarp], rowSum[kRowsPerWarp], acc[kRowsPerWarp][kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; i++) {
    const int r = warp + i * kWarps;
    rowPos[i] = r < numRows ? a.positions[blk.firstToken + r / a.headsPerBlock] : -1;
    rowMax[i] = -INFINITY;
    rowSum[i] = 0.0f;
#pragma unroll
    for (int j = 0; j < kDimsPerLane; j++) acc[i][j] = 0.0f;
  }

  const int32_t* pageTable = a.pageTables + blk.pageTableOffset;
  const T* kCache = static_cast<const T*>(a.kCache);
  const T* vCache = static_cast<const T*>(a.vCache);
  const int64_t slotStride = int64_t{a.numKvHeads} * D;

  // K/V tile loads: 16-byte vectors, every load of the tile issued before the first use.
  constexpr int kVec = 16 / sizeof(T);
  constexpr int kVecPerKey = D / kVec;
  constexpr int kVecPerTile = kTile * kVecPerKey;
  constexpr int kLoads = (kVecPerTile + kWarps * 32 - 1) / (kWarps * 32);
  for (int32_t k0 = keyBegin; k0 < keyEnd; k0 += kTile) {
    uint4 kRaw[kLoads], vRaw[kLoads];
#pragma unroll
    for (int l = 0; l < kLoads; l++) {
      const int v = l * kWarps * 32 + threadIdx.x;
      const int32_t key = k0 + v / kVecPerKey;
      kRaw[l] = make_uint4(0, 0, 0, 0);
      vRaw[l] = make_uint4(0, 0, 0, 0);
      if (v < kVecPerTile && key < keyEnd) {
        const int64_t slot = int64_t{pageTable[key / a.pageSize]} * a.pageSize + key % a.pageSize;
        const int64_t idx = slot * slotStride + int64_t{kvHead} * D + (v % kVecPerKey) * kVec;
        kRaw[l] = *reinterpret_cast<const uint4*>(kCache + idx);
        vRaw[l] = *reinterpret_cast<const uint4*>(vCache + idx);
      }
    }
    __syncthreads();  // the previous tile's readers are done
#pragma unroll
    for (int l = 0; l < kLoads; l++) {
      const int v = l * kWarps * 32 + threadIdx.x;
      if (v >= kVecPerTile) continue;
      const int j = v / kVecPerKey, d0 = (v % kVecPerKey) * kVec;
      const T* kv = reinterpret_cast<const T*>(&kRaw[l]);
      const T* vv = reinterpret_cast<const T*>(&vRaw[l]);
#pragma unroll
      for (int e = 0; e < kVec; e++) {
        kS[j * kStride + d0 + e] = toFloat(kv[e]);
        vS[j * kStride + d0 + e] = toFloat(vv[e]);
      }
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; i++) {
      if (rowPos[i] < k0) continue;  // warp-uniform: the whole tile lies after this row
      const float* qRow = qS + (warp + i * kWarps) * D;
      const int32_t key = k0 + lane;
      const bool visible = key <= rowPos[i] && key < keyEnd;
      float score = -INFINITY;
      if (visible) {
        float dot = 0.0f;
#pragma unroll 16
        for (int d = 0; d < D; d++) dot = fmaf(qRow[d], kS[lane * kStride + d], dot);
        score = dot;
      }
      const float newMax = fmaxf(rowMax[i], warpMax(score));
      const float p = visible ? expf(score - newMax) : 0.0f;
      const float correction = expf(rowMax[i] - newMax);
      rowSum[i] = rowSum[i] * correction + warpSum(p);
      rowMax[i] = newMax;
#pragma unroll
      for (int j = 0; j < kDimsPerLane; j++) acc[i][j] *= correction;
      for (int k = 0; k < kTile; k++) {
        const float pk = __shfl_sync(0xffffffffu, p, k);
#pragma unroll
        for (int j = 0; j < kDimsPerLane; j++) {
          const int d = lane + 32 * j;
          if (d < D) acc[i][j] = fmaf(pk, vS[k * kStride + d], acc[i][j]);
        }
      }
    }
  }

  if (a.numSplits > 1) {  // this split's share, merged by mergeSplitsKernel
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; i++) {
      const int r = warp + i * kWarps;
      if (r >= numRows) continue;
      const int64_t row = splitRow(blockIdx.z, r);
#pragma unroll
      for (int j = 0; j < kDimsPerLane; j++) {
        const int d = lane + 32 * j;
        if (d < D) a.splitAcc[row * D + d] = acc[i][j];
      }
      if (lane == 0) {
        a.splitMax[row] = rowMax[i];
        a.splitSum[row] = rowSum[i];
      }
    }
    return;
  }

  T* out = static_cast<T*>(a.out);
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; i++) {
    const int r = warp + i * kWarps;
    if (r >= numRows) continue;
    const int32_t t = blk.firstToken + r / a.headsPerBlock, h = firstHead + r % a.headsPerBlock;
    const float inverseSum = 1.0f / rowSum[i];
#pragma unroll
    for (int j = 0; j < kDimsPerLane; j++) {
      const int d = lane + 32 * j;
      if (d < D) out[(int64_t{t} * a.numHeads + h) * D + d] = fromFloat<T>(acc[i][j] * inverseSum);
    }
  }
}

// out = sum over splits of acc_s * exp(max_s - max) / sum over splits of sum_s * exp(max_s - max).
// A split without visible keys has max -inf and sum 0: its weight is 0.
template <typename T, int D>
__global__ void __launch_bounds__(kWarps * 32) mergeSplitsKernel(AttentionArgs a) {
  const AttentionBlock blk = a.blocks[blockIdx.x];
  const int32_t firstHead = blockIdx.y * a.headsPerBlock;
  const int32_t numRows = blk.numTokens * a.headsPerBlock;
  T* out = static_cast<T*>(a.out);
  for (int i = threadIdx.x; i < numRows * D; i += blockDim.x) {
    const int r = i / D, d = i % D;
    float maxAll = -INFINITY;
    for (int s = 0; s < a.numSplits; s++) maxAll = fmaxf(maxAll, a.splitMax[splitRow(s, r)]);
    float sum = 0.0f, value = 0.0f;
    for (int s = 0; s < a.numSplits; s++) {
      const int64_t row = splitRow(s, r);
      const float m = a.splitMax[row];
      if (m == -INFINITY) continue;
      const float w = expf(m - maxAll);
      sum += a.splitSum[row] * w;
      value += a.splitAcc[row * D + d] * w;
    }
    const int32_t t = blk.firstToken + r / a.headsPerBlock, h = firstHead + r % a.headsPerBlock;
    out[(int64_t{t} * a.numHeads + h) * D + d] = fromFloat<T>(value / sum);
  }
}

template <typename T, int D>
void launch(const AttentionArgs& a, cudaStream_t stream) {
  constexpr size_t smemBytes = attentionSmemBytes<D>();
  static bool attributeSet = false;  // per instantiation; raising the limit twice is harmless
  if (!attributeSet && smemBytes > 48 * 1024) {
    CUDA_CHECK(cudaFuncSetAttribute(pagedAttentionKernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smemBytes)));
    attributeSet = true;
  }
  const dim3 grid(a.numBlocks, a.numHeads / a.headsPerBlock, a.numSplits);
  pagedAttentionKernel<T, D><<<grid, kWarps * 32, smemBytes, stream>>>(a);
  CUDA_CHECK_LAST();
  if (a.numSplits > 1) {
    mergeSplitsKernel<T, D><<<dim3(a.numBlocks, a.numHeads / a.headsPerBlock), kWarps * 32, 0, stream>>>(a);
    CUDA_CHECK_LAST();
  }
}

template <typename T>
void launchForHeadDim(const AttentionArgs& a, cudaStream_t stream) {
  switch (a.headDim) {
    case 16: return launch<T, 16>(a, stream);
    case 32: return launch<T, 32>(a, stream);
    case 64: return launch<T, 64>(a, stream);
    case 128: return launch<T, 128>(a, stream);
    case 256: return launch<T, 256>(a, stream);
    default: throw InvalidInputError("paged attention: head_dim " + std::to_string(a.headDim) + " unsupported");
  }
}

}  // namespace

int32_t attentionSplitsFor(int32_t numBlocks, int32_t gridY, int32_t maxKeys, int32_t numSms) {
  const int32_t wanted = (2 * numSms + numBlocks * gridY - 1) / (numBlocks * gridY);  // two waves
  const int32_t byKeys = (maxKeys + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
  return std::max(1, std::min({wanted, byKeys, kMaxAttentionSplits}));
}

int32_t attentionHeadsPerBlock(int32_t group) {
  for (int32_t h = std::min(group, kAttentionRowsPerBlock); h > 1; h--)
    if (group % h == 0) return h;
  return 1;
}

void appendAttentionBlocks(std::vector<AttentionBlock>& blocks, int32_t firstToken, int32_t numTokens,
                           int32_t pageTableOffset, int32_t startPos, int32_t tokensPerBlock) {
  for (int32_t i = 0; i < numTokens; i += tokensPerBlock) {
    const int32_t count = std::min(tokensPerBlock, numTokens - i);
    blocks.push_back(AttentionBlock{firstToken + i, count, pageTableOffset, startPos + i + count});
  }
}

int64_t attentionSplitFloats(const AttentionArgs& a) {
  if (a.numSplits <= 1) return 0;
  const int64_t rows = int64_t{a.numSplits} * a.numBlocks * (a.numHeads / a.headsPerBlock) * kRows;
  return rows * (a.headDim + 2);  // acc [rows, headDim], then max [rows] and sum [rows]
}

void setAttentionSplitBuffer(AttentionArgs& a, float* buffer) {
  const int64_t rows = attentionSplitFloats(a) / (a.headDim + 2);
  a.splitAcc = buffer;
  a.splitMax = buffer + rows * a.headDim;
  a.splitSum = a.splitMax + rows;
}

bool attentionSupportsHeadDim(int32_t headDim) {
  return headDim == 16 || headDim == 32 || headDim == 64 || headDim == 128 || headDim == 256;
}

void pagedAttention(const AttentionArgs& args, DType dtype, cudaStream_t stream) {
  if (args.numBlocks == 0) return;
  TANDEM_DISPATCH_DTYPE(dtype, T, launchForHeadDim<T>(args, stream));
}

}  // namespace tandem::cuda
