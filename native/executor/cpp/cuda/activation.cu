// SiLU-and-multiply over the fused gate/up projection output.
#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace tandem::cuda {
namespace {

template <typename T>
__global__ void siluAndMulKernel(const T* gateUp, T* out, int32_t intermediate) {
  const int64_t row = blockIdx.y;
  const T* gate = gateUp + row * 2 * intermediate;
  const T* up = gate + intermediate;
  for (int32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < intermediate; i += gridDim.x * blockDim.x) {
    const float g = toFloat(gate[i]);
    // HF: act_fn(gate) is a tensor of T, then multiplied by up in T.
    const float activated = toFloat(fromFloat<T>(g / (1.0f + expf(-g))));
    out[row * intermediate + i] = fromFloat<T>(activated * toFloat(up[i]));
  }
}

}  // namespace

void siluAndMul(const void* gateUp, void* out, DType dtype, int32_t numTokens, int32_t intermediate,
                cudaStream_t stream) {
  if (numTokens == 0) return;
  const dim3 grid((intermediate + 1023) / 1024, numTokens);
  TANDEM_DISPATCH_DTYPE(dtype, T,
                        siluAndMulKernel<T><<<grid, 256, 0, stream>>>(static_cast<const T*>(gateUp),
                                                                      static_cast<T*>(out), intermediate));
  CUDA_CHECK_LAST();
}

}  // namespace tandem::cuda
