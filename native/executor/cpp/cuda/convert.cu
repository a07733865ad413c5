// Element-wise data movement: stored-dtype conversion, embedding lookup, row gather.
#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace tandem::cuda {
namespace {

__device__ __forceinline__ float loadStored(const void* src, StoredDType type, int64_t i) {
  switch (type) {
    case StoredDType::F32:
      return static_cast<const float*>(src)[i];
    case StoredDType::BF16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(src)[i]);
    default:
      return __half2float(static_cast<const __half*>(src)[i]);
  }
}

template <typename T>
__global__ void convertKernel(const void* src, StoredDType srcType, T* dst, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    dst[i] = fromFloat<T>(loadStored(src, srcType, i));
}

template <typename T>
__global__ void embedKernel(const int32_t* tokenIds, const T* embedding, float* residual, int32_t hidden) {
  const int64_t row = blockIdx.x;
  const T* src = embedding + int64_t{tokenIds[row]} * hidden;
  for (int32_t i = threadIdx.x; i < hidden; i += blockDim.x) residual[row * hidden + i] = toFloat(src[i]);
}

template <typename T>
__global__ void gatherKernel(const T* in, const int32_t* rows, T* out, int32_t width) {
  const int64_t r = blockIdx.x;
  const T* src = in + int64_t{rows[r]} * width;
  for (int32_t i = threadIdx.x; i < width; i += blockDim.x) out[r * width + i] = src[i];
}

int gridFor(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<int>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

}  // namespace

void convertTensor(const void* src, StoredDType srcType, void* dst, DType dstType, int64_t n, cudaStream_t stream) {
  TANDEM_DISPATCH_DTYPE(dstType, T,
                        convertKernel<T><<<gridFor(n, 256), 256, 0, stream>>>(src, srcType, static_cast<T*>(dst), n));
  CUDA_CHECK_LAST();
}

void embedTokens(const int32_t* tokenIds, const void* embedding, DType dtype, float* residual, int32_t numTokens,
                 int32_t hidden, cudaStream_t stream) {
  if (numTokens == 0) return;
  TANDEM_DISPATCH_DTYPE(dtype, T,
                        embedKernel<T><<<numTokens, 256, 0, stream>>>(tokenIds, static_cast<const T*>(embedding),
                                                                      residual, hidden));
  CUDA_CHECK_LAST();
}

void gatherRows(const void* in, const int32_t* rows, void* out, DType dtype, int32_t numRows, int32_t width,
                cudaStream_t stream) {
  if (numRows == 0) return;
  TANDEM_DISPATCH_DTYPE(dtype, T,
                        gatherKernel<T><<<numRows, 256, 0, stream>>>(static_cast<const T*>(in), rows,
                                                                     static_cast<T*>(out), width));
  CUDA_CHECK_LAST();
}

}  // namespace tandem::cuda
