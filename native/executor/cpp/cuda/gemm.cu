// cuBLASLt wrapper (gemm.h). In cuBLAS's column-major terms the row-major product
// y[M,N] = x[M,K] w[N,K]^T is D(N x M) = op(A) B with A = w seen as K x N (transposed) and
// B = x seen as K x M.
#include "gemm.h"

#include <cublasLt.h>

#include <map>
#include <string>
#include <tuple>

#include "cuda_check.h"

#define CUBLAS_CHECK(call)                                                                                  \
  do {                                                                                                      \
    cublasStatus_t tandemStatus_ = (call);                                                                  \
    if (tandemStatus_ != CUBLAS_STATUS_SUCCESS)                                                             \
      throw ::tandem::DeviceError(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " #call       \
                                  " failed: " + cublasLtGetStatusName(tandemStatus_) + " (" +               \
                                  cublasLtGetStatusString(tandemStatus_) + ")");                            \
  } while (0)

namespace tandem::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{64} << 20;

cudaDataType_t cudaType(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    default: return CUDA_R_16F;
  }
}

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

}  // namespace

struct Gemm::Impl {
  cudaStream_t stream = nullptr;
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::map<std::tuple<int32_t, int32_t, int32_t, int, int>, Plan> plans;

  ~Impl() {
    for (auto& [key, plan] : plans) {
      cublasLtMatrixLayoutDestroy(plan.a);
      cublasLtMatrixLayoutDestroy(plan.b);
      cublasLtMatrixLayoutDestroy(plan.c);
      cublasLtMatmulDescDestroy(plan.desc);
    }
    if (workspace != nullptr) cudaFree(workspace);
    if (handle != nullptr) cublasLtDestroy(handle);
  }

  const Plan& plan(int32_t m, int32_t n, int32_t k, DType in, DType out) {
    const auto key = std::make_tuple(m, n, k, static_cast<int>(in), static_cast<int>(out));
    if (auto it = plans.find(key); it != plans.end()) return it->second;
    Plan p;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t transA = CUBLAS_OP_T, transB = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &transA, sizeof(transA)));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &transB, sizeof(transB)));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, cudaType(in), k, n, k));  // w: K x N, ld K
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, cudaType(in), k, m, k));  // x: K x M, ld K
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, cudaType(out), n, m, n));  // y: N x M, ld N
    cublasLtMatmulPreference_t pref = nullptr;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t workspaceBytes = kWorkspaceBytes;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                      &workspaceBytes, sizeof(workspaceBytes)));
    // Split-K partial sums stay float32: the in-place and output-type schemes would add them in
    // bf16/f16, an extra rounding per split (torch's allow_bf16_reduced_precision_reduction).
    const uint32_t reductions = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &reductions,
                                                      sizeof(reductions)));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t status =
        cublasLtMatmulAlgoGetHeuristic(handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
      cublasLtMatrixLayoutDestroy(p.a);
      cublasLtMatrixLayoutDestroy(p.b);
      cublasLtMatrixLayoutDestroy(p.c);
      cublasLtMatmulDescDestroy(p.desc);
      throw DeviceError("cuBLASLt has no algorithm for " + std::to_string(m) + "x" + std::to_string(n) + "x" +
                        std::to_string(k) + " (" + cublasLtGetStatusString(status) + ")");
    }
    p.algo = result.algo;
    return plans.emplace(key, p).first->second;
  }
};

Gemm::Gemm(cudaStream_t stream) : impl_(std::make_unique<Impl>()) {
  impl_->stream = stream;
  CUBLAS_CHECK(cublasLtCreate(&impl_->handle));
  CUDA_CHECK(cudaMalloc(&impl_->workspace, kWorkspaceBytes));
}

Gemm::~Gemm() = default;

void Gemm::run(const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k, DType inputType,
               DType outputType) {
  if (m == 0) return;
  const Plan& p = impl_->plan(m, n, k, inputType, outputType);
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(impl_->handle, p.desc, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.algo,
                              impl_->workspace, kWorkspaceBytes, impl_->stream));
}

}  // namespace tandem::cuda
