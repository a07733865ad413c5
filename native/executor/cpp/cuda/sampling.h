// Sampling and log-probabilities on the device, with the CPU sampler's semantics
// (cpp/common/sampler.cc): logit bias -> allowed ids and bitmask -> repetition penalty -> frequency /
// presence penalties -> greedy argmax, or temperature -> softmax -> top-k -> top-p -> min-p ->
// one draw u = uniformDraw(seed, position) walked over the kept tokens in id order.
// logprobs and top logprobs always describe the raw distribution (log-softmax of the logits).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace tandem::cuda {

// How one logits row is used.
constexpr int32_t kRowLogprobOnly = 0;  // teacher forcing only: no sample
constexpr int32_t kRowGreedy = 1;
constexpr int32_t kRowStochastic = 2;

// One penalised / biased token of a row (unique per row).
struct LogitEdit {
  int32_t tokenId;
  float bias;           // summed logit bias
  int32_t seen;         // in prompt or output (repetition penalty)
  int32_t outputCount;  // occurrences in the output (frequency / presence penalties)
};

struct SampleRow {
  int32_t mode = kRowLogprobOnly;
  int32_t targetId = -1;  // teacher forcing target, or -1
  float temperature = 1.0f;
  int32_t topK = 0;
  float topP = 1.0f;
  float minP = 0.0f;
  float repetitionPenalty = 1.0f;
  float frequencyPenalty = 0.0f;
  float presencePenalty = 0.0f;
  int32_t numTop = 0;  // top logprobs wanted (<= maxTop)
  int32_t editOffset = 0, numEdits = 0;
  int32_t allowedOffset = 0, numAllowed = 0;  // numAllowed 0: every token allowed
  int32_t maskOffset = -1;                    // first word of the row's allowed bitmask in masks; -1: none
  int32_t stochasticIndex = -1;               // row in the stochastic buffers, or -1
  int32_t returnProbs = 0;
  uint64_t seed = 0;
  int64_t position = 0;  // absolute position of the token being sampled
};

struct SampleResults {
  int32_t* tokenIds;        // [numRows] chosen id (sample rows)
  float* logprobs;          // [numRows] raw logprob of the chosen id
  float* targetLogprobs;    // [numRows] raw logprob of targetId (rows with a target)
  int32_t* topIds;          // [numRows, maxTop]
  float* topLogprobs;       // [numRows, maxTop]
};

struct SamplingArgs {
  const float* logits;       // [numRows, vocab] raw logits
  float* work;               // [numRows, vocab] processed logits, then the final probs (returnProbs)
  const SampleRow* rows;     // [numRows]
  const LogitEdit* edits;
  const int32_t* allowed;
  const uint32_t* masks;     // allowed-token bitmasks, ceil(vocab / 32) words each (bit id & 31 of word id >> 5)
  int32_t numRows = 0, vocab = 0, maxTop = 0;
  SampleResults results;
  float* rowLogSumExp;       // [numRows] scratch
  // Stochastic rows only (numStochastic may be 0):
  int32_t numStochastic = 0;
  const int32_t* stochasticRows;  // [numStochastic] row index of each
  float* sortedKeys;              // [numStochastic, vocab]
  int32_t* sortedIds;             // [numStochastic, vocab]
  int32_t* idsIn;                 // [numStochastic, vocab] scratch
  float* keysIn;                  // [numStochastic, vocab] scratch
  int32_t* segmentOffsets;        // [numStochastic + 1]
  double* dense;                  // [numStochastic, vocab]
  void* sortTemp;                 // cub temporary storage
  size_t sortTempBytes = 0;
};

// Bytes of cub temporary storage needed to sort numStochastic rows of vocab.
size_t samplingSortTempBytes(int32_t numStochastic, int32_t vocab);

void sampleRows(const SamplingArgs& args, cudaStream_t stream);

}  // namespace tandem::cuda
