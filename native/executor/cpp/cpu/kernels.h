// CPU float32 kernels. Every kernel computes each output element with one fixed summation order
// whatever the batch shape, so a token gets bit-identical results alone or inside a batch.
#pragma once

#include <cstdint>

namespace tandem::cpu {

// y[M, N] = x[M, K] * W[N, K]^T (+ bias[N]); rows contiguous. Parallel over N (OpenMP).
// M == 1 is the decode GEMV (streams W once); larger M reuses each W tile across a block of rows.
void matmulNT(const float* x, int64_t M, int64_t K, const float* W, int64_t N, const float* bias, float* y,
              int numThreads);

// The plain reference the lab and tests compare against.
void matmulNTReference(const float* x, int64_t M, int64_t K, const float* W, int64_t N, const float* bias, float* y);

// out[n] = w[n] * (x[n] * rsqrt(mean(x^2) + eps)), as Hugging Face's LlamaRMSNorm in float32.
void rmsNorm(const float* x, const float* w, int64_t n, float eps, float* out);

// dot product over n contiguous floats (vectorised, fixed order).
float dot(const float* a, const float* b, int64_t n);

// y[i] += a * x[i]
void axpy(float a, const float* x, float* y, int64_t n);

// STREAM-like triad a = b + s * c over all threads; returns bytes/second (best of repeats).
double measureMemoryBandwidth(int64_t numElements, int repeats, int numThreads);

}  // namespace tandem::cpu
