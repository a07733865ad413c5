// QKV split + bias + per-head q/k RMSNorm + RoPE (rotate-half form, as Hugging Face Llama/Qwen),
// then the new k and v go straight into the paged KV cache. One block a token, one warp a head (16 warps).
#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace tandem::cuda {
namespace {

constexpr int kWarps = 16;  // one head a warp: a decode token has 48 heads of work (8B, 1B)
constexpr int kMaxHeadDim = 256;

template <typename T>
__device__ __forceinline__ float roundTo(float v) {
  return toFloat(fromFloat<T>(v));
}

template <typename T>
__global__ void __launch_bounds__(kWarps * 32) qkvRopeCacheKernel(QkvRopeArgs a) {
  __shared__ float headBuf[kWarps][kMaxHeadDim];
  const int32_t token = blockIdx.x;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int32_t D = a.headDim, half = D / 2;
  const int32_t numAllHeads = a.numHeads + 2 * a.numKvHeads;
  const T* row = static_cast<const T*>(a.qkv) + int64_t{token} * numAllHeads * D;
  const float position = static_cast<float>(a.positions[token]);
  const int64_t slot = a.slotMapping[token];
  float* buf = headBuf[warp];

  for (int32_t head = warp; head < numAllHeads; head += kWarps) {
    const bool isQ = head < a.numHeads, isK = !isQ && head < a.numHeads + a.numKvHeads;
    float sumSquares = 0.0f;
    for (int32_t d = lane; d < D; d += 32) {
      float v = toFloat(row[head * D + d]);
      if (a.bias != nullptr) v = roundTo<T>(v + a.bias[head * D + d]);
      buf[d] = v;
      sumSquares += v * v;
    }
    const float* normWeight = isQ ? a.qNormWeight : (isK ? a.kNormWeight : nullptr);
    if (normWeight != nullptr) {
      const float inverseRms = 1.0f / sqrtf(warpSum(sumSquares) / static_cast<float>(D) + a.normEps);
      for (int32_t d = lane; d < D; d += 32) buf[d] = roundTo<T>(roundTo<T>(buf[d] * inverseRms) * normWeight[d]);
    }
    __syncwarp();
    if (isQ || isK) {
      // out[d] = x[d] cos - x[d + half] sin ; out[d + half] = x[d + half] cos + x[d] sin
      float rotated[kMaxHeadDim / 32];
#pragma unroll
      for (int j = 0; j < kMaxHeadDim / 32; j++) {
        const int32_t d = lane + 32 * j;
        if (d >= D) break;
        const int32_t i = d < half ? d : d - half;
        const float angle = position * a.invFreq[i];
        const float c = roundTo<T>(cosf(angle)), s = roundTo<T>(sinf(angle));
        const float other = d < half ? -buf[d + half] : buf[d - half];
        rotated[j] = roundTo<T>(roundTo<T>(buf[d] * c) + roundTo<T>(other * s));
      }
      __syncwarp();
#pragma unroll
      for (int j = 0; j < kMaxHeadDim / 32; j++) {
        const int32_t d = lane + 32 * j;
        if (d >= D) break;
        buf[d] = rotated[j];
      }
      __syncwarp();
    }
    T* dst;
    if (isQ) {
      dst = static_cast<T*>(a.q) + (int64_t{token} * a.numHeads + head) * D;
    } else {
      const int32_t kvHead = isK ? head - a.numHeads : head - a.numHeads - a.numKvHeads;
      T* cache = static_cast<T*>(isK ? a.kCache : a.vCache);
      dst = cache + (slot * a.numKvHeads + kvHead) * D;
    }
    for (int32_t d = lane; d < D; d += 32) dst[d] = fromFloat<T>(buf[d]);
    __syncwarp();
  }
}

}  // namespace

void qkvRopeCache(const QkvRopeArgs& args, DType dtype, cudaStream_t stream) {
  if (args.numTokens == 0) return;
  if (args.headDim > kMaxHeadDim || args.headDim % 2 != 0)
    throw InvalidInputError("qkvRopeCache: head_dim " + std::to_string(args.headDim) + " unsupported");
  TANDEM_DISPATCH_DTYPE(dtype, T, qkvRopeCacheKernel<T><<<args.numTokens, kWarps * 32, 0, stream>>>(args));
  CUDA_CHECK_LAST();
}

}  // namespace tandem::cuda
