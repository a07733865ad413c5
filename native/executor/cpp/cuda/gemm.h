// Row-major GEMMs through cuBLASLt: y[M, N] = x[M, K] @ w[N, K]^T, the Hugging Face Linear
// layout. float32 accumulation always (CUBLAS_COMPUTE_32F: no TF32, so float32 runs stay exact
// to ~1e-6). Plans (descriptors + heuristic algorithm) are cached per shape.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

#include "tandem/backend.h"

namespace tandem::cuda {

class Gemm {
 public:
  explicit Gemm(cudaStream_t stream);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // x, w in `inputType`; y in `outputType` (the input type, or F32 for the LM head's logits).
  void run(const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k, DType inputType,
           DType outputType);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::cuda
