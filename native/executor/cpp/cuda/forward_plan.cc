// planForward: the host side of one batched forward. Token order, KV slots, page tables, which
// attention kernel takes which tokens (and whether CUDA-core blocks split their keys), and the
// logits rows to sample with their edits and allowed-token lists.
#include "forward_plan.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "tandem/errors.h"

namespace tandem::cuda {
namespace {

void checkSequence(const SequenceInput& s, size_t i, const ModelConfig& c, const KvPoolInfo& pool) {
  const std::string where = "sequence " + std::to_string(i) + ": ";
  if (s.startPos < 0) throw InvalidInputError(where + "negative startPos");
  for (int32_t id : s.tokenIds)
    if (id < 0 || id >= c.vocabSize) throw InvalidInputError(where + "token id " + std::to_string(id) + " out of range");
  const int64_t endPos = int64_t{s.startPos} + static_cast<int64_t>(s.tokenIds.size());
  if (static_cast<int64_t>(s.pageTable.size()) * pool.pageSize < endPos)
    throw InvalidInputError(where + "pageTable does not cover position " + std::to_string(endPos - 1));
  for (int32_t p : s.pageTable)
    if (p < 0 || p >= pool.numPages) throw InvalidInputError(where + "page " + std::to_string(p) + " out of range");
  for (int32_t idx : s.sampleIndices)
    if (idx < 0 || idx >= static_cast<int32_t>(s.tokenIds.size()))
      throw InvalidInputError(where + "sample index " + std::to_string(idx) + " out of range");
  if (!s.targetIds.empty()) {
    if (s.targetIds.size() != s.tokenIds.size())
      throw InvalidInputError(where + "targetIds must have one id per token");
    for (int32_t id : s.targetIds)
      if (id < 0 || id >= c.vocabSize) throw InvalidInputError(where + "target id out of range");
  }
}

// Prefill chunks of at least this many tokens take the tensor-core kernel (where it applies).
constexpr int32_t kMmaMinTokens = 16;

// Baselines the benchmark measures against in the same run: TANDEM_CUDA_ATTENTION=simt keeps
// every chunk on the CUDA-core kernel, TANDEM_CUDA_SPLIT_KV=off never splits keys.
bool envEquals(const char* name, const char* value) {
  const char* set = std::getenv(name);
  return set != nullptr && std::strcmp(set, value) == 0;
}
bool mmaAttentionDisabled() { return envEquals("TANDEM_CUDA_ATTENTION", "simt"); }
bool splitKvDisabled() { return envEquals("TANDEM_CUDA_SPLIT_KV", "off"); }

// Appends one sequence's logits rows (its sample rows; every token under teacher forcing) with
// their logit edits, allowed-token list and bitmask. s: the sequence's index in the batch; tokenBase: the
// index of its first token in plan.tokens.
void planRows(ForwardPlan& plan, const SequenceInput& seq, size_t s, int32_t tokenBase, int32_t V,
              std::mt19937_64& seedSource) {
  const int32_t n = static_cast<int32_t>(seq.tokenIds.size());

  // Sampling parameters shared by this sequence's sample rows.
  const SamplingParams& sp = seq.sampling;
  const int32_t editOffset = static_cast<int32_t>(plan.edits.size());
  std::map<int32_t, LogitEdit> editById;
  auto edit = [&](int32_t id) -> LogitEdit& {
    auto [it, inserted] = editById.try_emplace(id, LogitEdit{id, 0.0f, 0, 0});
    return it->second;
  };
  for (const auto& [id, bias] : sp.logitBias)
    if (id >= 0 && id < V) edit(id).bias += bias;
  if (sp.repetitionPenalty != 1.0f) {
    for (int32_t id : seq.promptTokenIds)
      if (id >= 0 && id < V) edit(id).seen = 1;
    for (int32_t id : seq.outputTokenIds)
      if (id >= 0 && id < V) edit(id).seen = 1;
  }
  if (sp.frequencyPenalty != 0.0f || sp.presencePenalty != 0.0f)
    for (int32_t id : seq.outputTokenIds)
      if (id >= 0 && id < V) edit(id).outputCount++;
  for (const auto& [id, e] : editById) plan.edits.push_back(e);
  const int32_t allowedOffset = static_cast<int32_t>(plan.allowed.size());
  plan.allowed.insert(plan.allowed.end(), sp.allowedTokenIds.begin(), sp.allowedTokenIds.end());
  int32_t maskOffset = -1;
  if (!sp.allowedTokenMask.empty()) {
    // Validated: at least ceil(V / 32) words; only those are uploaded.
    maskOffset = static_cast<int32_t>(plan.masks.size());
    const size_t words = (static_cast<size_t>(V) + 31) / 32;
    plan.masks.insert(plan.masks.end(), sp.allowedTokenMask.begin(), sp.allowedTokenMask.begin() + words);
  }
  const int32_t numTop = std::min(std::max(sp.numTopLogprobs, 0), V);
  const uint64_t seed = sp.hasSeed ? sp.seed : seedSource();

  std::vector<char> isSample(static_cast<size_t>(n), 0);
  for (int32_t idx : seq.sampleIndices) isSample[idx] = 1;
  const bool teacherForced = !seq.targetIds.empty();
  for (int32_t i = 0; i < n; i++) {
    if (!teacherForced && !isSample[i]) continue;
    SampleRow row;
    row.targetId = teacherForced ? seq.targetIds[i] : -1;
    if (isSample[i]) {
      row.mode = sp.temperature <= 0.0f ? kRowGreedy : kRowStochastic;
      row.temperature = sp.temperature;
      row.topK = sp.topK;
      row.topP = sp.topP;
      row.minP = sp.minP;
      row.repetitionPenalty = sp.repetitionPenalty;
      row.frequencyPenalty = sp.frequencyPenalty;
      row.presencePenalty = sp.presencePenalty;
      row.numTop = numTop;
      row.editOffset = editOffset;
      row.numEdits = static_cast<int32_t>(editById.size());
      row.allowedOffset = allowedOffset;
      row.numAllowed = static_cast<int32_t>(sp.allowedTokenIds.size());
      row.maskOffset = maskOffset;
      row.returnProbs = seq.returnProbs ? 1 : 0;
      row.seed = seed;
      row.position = int64_t{seq.startPos} + i + 1;
      plan.maxTop = std::max(plan.maxTop, numTop);
      if (row.mode == kRowStochastic) {
        row.stochasticIndex = static_cast<int32_t>(plan.stochasticRows.size());
        plan.stochasticRows.push_back(static_cast<int32_t>(plan.rows.size()));
      }
    }
    plan.rows.push_back(row);
    plan.logitRowTokens.push_back(tokenBase + i);
    plan.rowRefs.push_back(RowRef{static_cast<int32_t>(s), i, isSample[i] != 0});
  }
}

}  // namespace

ForwardPlan planForward(const std::vector<SequenceInput>& batch, const ModelConfig& config, const KvPoolInfo& pool,
                        DType dtype, int32_t numSms, std::mt19937_64& seedSource) {
  const ModelConfig& c = config;
  for (size_t i = 0; i < batch.size(); i++) checkSequence(batch[i], i, c, pool);

  ForwardPlan plan;
  const int32_t group = c.numHeads / c.numKvHeads;
  const int32_t headsPerBlock = attentionHeadsPerBlock(group);
  const int32_t tokensPerBlock = std::max(1, kAttentionRowsPerBlock / headsPerBlock);
  const bool useMma = attentionMmaSupports(dtype, c.headDim) && !mmaAttentionDisabled();
  const int32_t V = c.vocabSize;
  plan.headsPerBlock = headsPerBlock;

  for (size_t s = 0; s < batch.size(); s++) {
    const SequenceInput& seq = batch[s];
    const int32_t n = static_cast<int32_t>(seq.tokenIds.size());
    const int32_t tokenBase = static_cast<int32_t>(plan.tokens.size());
    const int32_t tableOffset = static_cast<int32_t>(plan.pageTables.size());
    plan.pageTables.insert(plan.pageTables.end(), seq.pageTable.begin(), seq.pageTable.end());
    for (int32_t i = 0; i < n; i++) {
      const int32_t pos = seq.startPos + i;
      plan.tokens.push_back(seq.tokenIds[i]);
      plan.positions.push_back(pos);
      plan.slots.push_back(seq.pageTable[pos / pool.pageSize] * pool.pageSize + pos % pool.pageSize);
    }
    if (useMma && n >= kMmaMinTokens)
      appendAttentionBlocks(plan.mmaBlocks, tokenBase, n, tableOffset, seq.startPos, kAttentionMmaTokensPerBlock);
    else
      appendAttentionBlocks(plan.blocks, tokenBase, n, tableOffset, seq.startPos, tokensPerBlock);

    planRows(plan, seq, s, tokenBase, V, seedSource);
  }
  plan.numTokens = static_cast<int32_t>(plan.tokens.size());
  plan.numRows = static_cast<int32_t>(plan.rows.size());
  plan.numStochastic = static_cast<int32_t>(plan.stochasticRows.size());

  // Split-KV for the CUDA-core kernel when its blocks alone cannot fill the GPU.
  if (!plan.blocks.empty() && !splitKvDisabled()) {
    int32_t maxKeys = 0;
    for (const AttentionBlock& b : plan.blocks) maxKeys = std::max(maxKeys, b.numKeys);
    plan.numSplits = attentionSplitsFor(static_cast<int32_t>(plan.blocks.size()), c.numHeads / headsPerBlock, maxKeys,
                                        numSms);
  }
  return plan;
}

}  // namespace tandem::cuda
