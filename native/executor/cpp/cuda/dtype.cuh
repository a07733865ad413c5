// Element conversions shared by the kernels: every kernel is templated on the activation type
// T (float, __nv_bfloat16, __half) and computes in float.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace tandem::cuda {

__device__ __forceinline__ float toFloat(float v) { return v; }
__device__ __forceinline__ float toFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float toFloat(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T fromFloat(float v);
template <>
__device__ __forceinline__ float fromFloat<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half fromFloat<__half>(float v) { return __float2half_rn(v); }

__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warpMax(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024). `scratch` holds 32 floats.
__device__ __forceinline__ float blockSum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, numWarps = blockDim.x >> 5;
  v = warpSum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < numWarps ? scratch[lane] : 0.0f;
  return warpSum(v);
}

}  // namespace tandem::cuda

// Instantiates a launcher's body for each activation type. `DTYPE` is a tandem::DType.
#define TANDEM_DISPATCH_DTYPE(DTYPE, T, ...)                                \
  switch (DTYPE) {                                                          \
    case ::tandem::DType::F32: {                                            \
      using T = float;                                                      \
      __VA_ARGS__;                                                          \
      break;                                                                \
    }                                                                       \
    case ::tandem::DType::BF16: {                                           \
      using T = __nv_bfloat16;                                              \
      __VA_ARGS__;                                                          \
      break;                                                                \
    }                                                                       \
    case ::tandem::DType::F16: {                                            \
      using T = __half;                                                     \
      __VA_ARGS__;                                                          \
      break;                                                                \
    }                                                                       \
  }
