// CUDA_CHECK / CUDA_CHECK_LAST: turn a failed CUDA runtime call into tandem::DeviceError carrying
// the file, the line, the call and the device's own message (OutOfMemoryError for allocation
// failures). CUBLAS_CHECK lives in gemm.cu, the only file that sees cuBLASLt.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "tandem/errors.h"

namespace tandem::cuda {

[[noreturn]] inline void throwCudaError(cudaError_t status, const char* call, const char* file, int line) {
  std::string message = std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                        cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")";
  if (status == cudaErrorMemoryAllocation) throw OutOfMemoryError(message);
  throw DeviceError(message);
}

}  // namespace tandem::cuda

#define CUDA_CHECK(call)                                                                   \
  do {                                                                                     \
    cudaError_t tandemStatus_ = (call);                                                    \
    if (tandemStatus_ != cudaSuccess)                                                      \
      ::tandem::cuda::throwCudaError(tandemStatus_, #call, __FILE__, __LINE__);            \
  } while (0)

// After a kernel launch: launch-configuration errors surface here, execution errors at the
// next synchronising call (also checked).
#define CUDA_CHECK_LAST() CUDA_CHECK(cudaGetLastError())
