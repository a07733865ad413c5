// RMSNorm with the residual add fused in: one block a row, float32 statistics. The residual
// lives in a float32 buffer but holds values rounded to T, as Hugging Face's T residual does.
#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace tandem::cuda {
namespace {

template <typename T>
__global__ void __launch_bounds__(256) addRmsNormKernel(float* residual, const T* delta, const float* weight, T* out,
                                                         int32_t hidden, float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  float* x = residual + row * hidden;
  float sumSquares = 0.0f;
  for (int32_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    float v = x[i];
    if (delta != nullptr) {
      // Hugging Face keeps the residual stream in T: round each sum like it does.
      v = toFloat(fromFloat<T>(v + toFloat(delta[row * hidden + i])));
      x[i] = v;
    }
    sumSquares += v * v;
  }
  const float total = blockSum(sumSquares, scratch);
  const float inverseRms = 1.0f / sqrtf(total / static_cast<float>(hidden) + eps);
  for (int32_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float normed = toFloat(fromFloat<T>(x[i] * inverseRms));  // HF: hidden.to(input_dtype)
    out[row * hidden + i] = fromFloat<T>(normed * weight[i]);
  }
}

}  // namespace

void addRmsNorm(float* residual, const void* delta, const float* weight, void* out, DType dtype, int32_t numRows,
                int32_t hidden, float eps, cudaStream_t stream) {
  if (numRows == 0) return;
  TANDEM_DISPATCH_DTYPE(dtype, T,
                        addRmsNormKernel<T><<<numRows, 256, 0, stream>>>(residual, static_cast<const T*>(delta),
                                                                         weight, static_cast<T*>(out), hidden, eps));
  CUDA_CHECK_LAST();
}

}  // namespace tandem::cuda
