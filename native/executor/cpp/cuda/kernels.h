// Host-side launchers of the model kernels. Every pointer is a device pointer; every launcher
// enqueues on `stream` and checks the launch (CUDA_CHECK_LAST). Activations are in the compute
// dtype T (DType), the residual stream and norm weights in float32.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "tandem/backend.h"
#include "tandem/weights.h"

namespace tandem::cuda {

// dst[i] = convert(src[i]) for n elements: stored dtype -> compute dtype (or F32).
void convertTensor(const void* src, StoredDType srcType, void* dst, DType dstType, int64_t n, cudaStream_t stream);

// residual[t, :] = float(embedding[tokenIds[t], :])   residual: [numTokens, hidden] f32
void embedTokens(const int32_t* tokenIds, const void* embedding, DType dtype, float* residual, int32_t numTokens,
                 int32_t hidden, cudaStream_t stream);

// When delta != nullptr: residual += float(delta). Then out = T(rmsnorm(residual) * weight), rounding
// like Hugging Face (normalised value rounded to T before the weight multiply).
// residual: [numRows, hidden] f32; delta, out: [numRows, hidden] T; weight: [hidden] f32.
void addRmsNorm(float* residual, const void* delta, const float* weight, void* out, DType dtype, int32_t numRows,
                int32_t hidden, float eps, cudaStream_t stream);

// Splits the fused QKV projection: adds biases, applies per-head q/k RMSNorm (Qwen3) and RoPE,
// writes q to `q` and k, v into the layer's KV pages at slotMapping[t].
struct QkvRopeArgs {
  const void* qkv;             // [numTokens, (numHeads + 2 * numKvHeads) * headDim] T
  const float* bias;           // [(numHeads + 2 * numKvHeads) * headDim] f32, or nullptr
  const float* qNormWeight;    // [headDim] f32, or nullptr
  const float* kNormWeight;    // [headDim] f32, or nullptr
  const float* invFreq;        // [headDim / 2] f32 (llama3 scaling already applied)
  const int32_t* positions;    // [numTokens]
  const int32_t* slotMapping;  // [numTokens] page * pageSize + offset
  void* q;                     // [numTokens, numHeads, headDim] T
  void* kCache;                // this layer's K pages [numPages, pageSize, numKvHeads, headDim] T
  void* vCache;                // this layer's V pages, same shape
  int32_t numTokens = 0, numHeads = 0, numKvHeads = 0, headDim = 0;
  float normEps = 1e-6f;
};
void qkvRopeCache(const QkvRopeArgs& args, DType dtype, cudaStream_t stream);

// A run of consecutive new tokens of one sequence that one thread block attends for.
struct AttentionBlock {
  int32_t firstToken;       // index into the batch's tokens
  int32_t numTokens;        // <= tokensPerBlock
  int32_t pageTableOffset;  // into pageTables
  int32_t numKeys;          // position of the block's last token + 1
};

struct AttentionArgs {
  const void* q;                 // [numTokens, numHeads, headDim] T
  void* out;                     // [numTokens, numHeads, headDim] T
  const void* kCache;            // this layer's K pages [numPages, pageSize, numKvHeads, headDim] T
  const void* vCache;            // this layer's V pages
  const int32_t* pageTables;     // concatenated page tables of the batch
  const AttentionBlock* blocks;  // [numBlocks]
  const int32_t* positions;      // [numTokens]
  int32_t numBlocks = 0, numHeads = 0, numKvHeads = 0, headDim = 0, pageSize = 0;
  int32_t headsPerBlock = 0;  // q heads of one kv head handled together (divides numHeads / numKvHeads)
  float scale = 1.0f;
  // Split-KV (pagedAttention only): with numSplits > 1 each block's keys are shared out over
  // numSplits blocks, whose partial results (indexed [split][block][gridY][16 rows]) are merged.
  int32_t numSplits = 1;
  float* splitAcc = nullptr;  // [numSplits * numBlocks * gridY * 16, headDim]
  float* splitMax = nullptr;  // [numSplits * numBlocks * gridY * 16]
  float* splitSum = nullptr;  // same
};
// Causal attention of each new token over every cached position <= its own (prefill chunks over a
// cached prefix and decode steps alike). Rows per block: tokensPerBlock * headsPerBlock <= 16.
constexpr int32_t kAttentionRowsPerBlock = 16;
bool attentionSupportsHeadDim(int32_t headDim);
// q heads of one kv head that pagedAttention handles together: the largest divisor of the group
// size (numHeads / numKvHeads) that fits a block's rows.
int32_t attentionHeadsPerBlock(int32_t group);
// Appends the blocks of one sequence's numTokens new tokens (batch tokens firstToken.., positions
// startPos..), tokensPerBlock tokens a block.
void appendAttentionBlocks(std::vector<AttentionBlock>& blocks, int32_t firstToken, int32_t numTokens,
                           int32_t pageTableOffset, int32_t startPos, int32_t tokensPerBlock);
// Split-KV partials of args (numSplits, numBlocks, headsPerBlock set): how many float32 the buffer
// needs, and pointing splitAcc / splitMax / splitSum into one such buffer.
int64_t attentionSplitFloats(const AttentionArgs& args);
void setAttentionSplitBuffer(AttentionArgs& args, float* buffer);
// How many splits pagedAttention should use: enough blocks for two waves over numSms, at most
// kMaxAttentionSplits, and no split under 128 keys. gridY = numHeads / headsPerBlock.
constexpr int32_t kMaxAttentionSplits = 16;
int32_t attentionSplitsFor(int32_t numBlocks, int32_t gridY, int32_t maxKeys, int32_t numSms);
void pagedAttention(const AttentionArgs& args, DType dtype, cudaStream_t stream);

// The same attention on tensor cores (attention_mma.cu) for prefill chunks: blocks of up to
// kAttentionMmaTokensPerBlock consecutive tokens of one sequence, one q head each (headsPerBlock
// is ignored). bf16 / f16 with head_dim 64 or 128 (attentionMmaSupports).
constexpr int32_t kAttentionMmaTokensPerBlock = 64;
bool attentionMmaSupports(DType dtype, int32_t headDim);
void prefillAttentionMma(const AttentionArgs& args, DType dtype, cudaStream_t stream);

// out[t, i] = silu(gateUp[t, i]) * gateUp[t, intermediate + i]   (T, rounded like Hugging Face)
void siluAndMul(const void* gateUp, void* out, DType dtype, int32_t numTokens, int32_t intermediate,
                cudaStream_t stream);

// out[r, :] = in[rows[r], :]   (T, width elements a row)
void gatherRows(const void* in, const int32_t* rows, void* out, DType dtype, int32_t numRows, int32_t width,
                cudaStream_t stream);

}  // namespace tandem::cuda
