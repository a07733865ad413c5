// The plan of one batched forward: what every token, attention block and logits row of the batch
// is, decided on the host (planForward, forward_plan.cc) and uploaded in one copy
// (CudaBackend::uploadPlan, cuda_forward.cc). The steps that run it are CudaBackend's.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "kernels.h"
#include "sampling.h"
#include "tandem/backend.h"

namespace tandem::cuda {

// Where one logits row's results go in the outputs.
struct RowRef {
  int32_t sequence;
  int32_t index;  // into that sequence's tokenIds
  bool sample;    // a sample row (else teacher forcing only)
};

// One batched forward, planned. Host memory throughout; uploadPlan packs the arrays above
// "Not uploaded", in this order.
struct ForwardPlan {
  // Tokens, sequence after sequence.
  std::vector<int32_t> tokens;      // [numTokens] token ids
  std::vector<int32_t> positions;   // [numTokens] absolute positions
  std::vector<int32_t> slots;       // [numTokens] KV slot: page * pageSize + offset in the page
  std::vector<int32_t> pageTables;  // every sequence's page table, concatenated
  // Attention, one list per kernel; each layer runs both.
  std::vector<AttentionBlock> blocks;     // CUDA cores: decode steps and short chunks
  std::vector<AttentionBlock> mmaBlocks;  // tensor cores: prefill chunks of kMmaMinTokens+ tokens
  // Logits rows: each sampled token and, under teacher forcing, every token.
  std::vector<int32_t> logitRowTokens;  // [numRows] index into tokens
  std::vector<SampleRow> rows;          // [numRows] how each row is sampled
  std::vector<LogitEdit> edits;         // biased / penalised tokens; a row's from its editOffset
  std::vector<int32_t> allowed;         // allowed-token lists; a row's from its allowedOffset
  std::vector<uint32_t> masks;          // allowed-token bitmasks, ceil(vocab / 32) words each; a row's from its maskOffset
  std::vector<int32_t> stochasticRows;  // [numStochastic] row index of each stochastic row
  // Not uploaded.
  std::vector<RowRef> rowRefs;  // [numRows]
  int32_t numTokens = 0, numRows = 0, numStochastic = 0;
  int32_t maxTop = 0;         // most top logprobs any row wants
  int32_t headsPerBlock = 1;  // q heads of one kv head in a CUDA-core attention block
  int32_t numSplits = 1;      // split-KV of the CUDA-core blocks (1: keys not split)
};

// Checks every sequence against the model and the pool (InvalidInputError), then plans the batch.
// Sequences without a seed draw theirs from seedSource, in batch order. numSms: the device's
// streaming multiprocessors, for the split-KV choice.
ForwardPlan planForward(const std::vector<SequenceInput>& batch, const ModelConfig& config, const KvPoolInfo& pool,
                        DType dtype, int32_t numSms, std::mt19937_64& seedSource);

// The uploaded arrays of a ForwardPlan: device pointers into Workspace::meta, valid until the next
// forward's upload. Sizes as in ForwardPlan.
struct DevicePlan {
  const int32_t* tokens;
  const int32_t* positions;
  const int32_t* slots;
  const int32_t* pageTables;
  const AttentionBlock* blocks;
  const AttentionBlock* mmaBlocks;
  const int32_t* logitRowTokens;
  const SampleRow* rows;
  const LogitEdit* edits;
  const int32_t* allowed;
  const uint32_t* masks;
  const int32_t* stochasticRows;
};

// The sampling results' layout in Workspace::results (device) and hostResults (pinned host):
// tokenIds, logprobs, targetLogprobs, rowLogSumExp [R] each, then topIds, topLogprobs [R, topWidth].
struct ResultLayout {
  int64_t R;         // max(numRows, 1)
  int32_t topWidth;  // max(maxTop, 1)
  size_t bytes;
};

}  // namespace tandem::cuda
