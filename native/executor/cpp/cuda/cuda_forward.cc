// CudaBackend::forward: plans the batch on the host (token order, slots, attention blocks,
// logits rows, sampling rows), uploads it in one copy, runs the layers, samples on the device
// and copies back only the small results (plus logits / probs rows that were asked for).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "cuda_backend.h"
#include "cuda_check.h"
#include "kernels.h"
#include "sampling.h"
#include "tandem/errors.h"

namespace tandem::cuda {
namespace {

// Appends arrays to one host block at 256-byte aligned offsets, mirrored by one device block.
class Packer {
 public:
  template <typename T>
  size_t add(const std::vector<T>& v) {
    const size_t offset = (bytes_ + 255) & ~size_t{255};
    parts_.push_back({offset, v.data(), v.size() * sizeof(T)});
    bytes_ = offset + v.size() * sizeof(T);
    return offset;
  }
  size_t bytes() const { return bytes_ == 0 ? 256 : bytes_; }
  void copyTo(char* host) const {
    for (const Part& p : parts_)
      if (p.bytes > 0) std::memcpy(host + p.offset, p.data, p.bytes);
  }

 private:
  struct Part {
    size_t offset;
    const void* data;
    size_t bytes;
  };
  std::vector<Part> parts_;
  size_t bytes_ = 0;
};

// Where each sequence's outputs come from.
struct RowRef {
  int32_t sequence;
  int32_t index;  // into that sequence's tokenIds
  bool sample;
};

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

}  // namespace

void CudaBackend::forward(const std::vector<SequenceInput>& batch, std::vector<SequenceOutput>& out,
                          const LayerDoneHook& onLayerDone) {
  CUDA_CHECK(cudaSetDevice(device_));
  if (onLayerDone || layerHook_) {
    // A callback of an earlier forward that threw may still be queued: let it run out first.
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    layerHook_ = onLayerDone;
    layerCalls_.resize(static_cast<size_t>(config_.numLayers));
  }
  if (!loaded_ || pool_.numPages == 0) throw InvalidInputError("forward before loadWeights / allocateKvPool");
  const ModelConfig& c = config_;
  for (size_t i = 0; i < batch.size(); i++) checkSequence(batch[i], i, c, pool_);
  out.assign(batch.size(), SequenceOutput{});

  const int32_t group = c.numHeads / c.numKvHeads;
  const int32_t headsPerBlock = attentionHeadsPerBlock(group);
  const int32_t tokensPerBlock = std::max(1, kAttentionRowsPerBlock / headsPerBlock);
  const bool useMma = attentionMmaSupports(dtype_, c.headDim) && !mmaAttentionDisabled();
  const int32_t V = c.vocabSize;

  // ---- plan ----
  std::vector<int32_t> tokens, positions, slots, pageTables, logitRowTokens, allowed, stochasticRows;
  std::vector<AttentionBlock> blocks, mmaBlocks;
  std::vector<SampleRow> rows;
  std::vector<LogitEdit> edits;
  std::vector<RowRef> rowRefs;
  int32_t maxTop = 0;
  for (size_t s = 0; s < batch.size(); s++) {
    const SequenceInput& seq = batch[s];
    const int32_t n = static_cast<int32_t>(seq.tokenIds.size());
    const int32_t tokenBase = static_cast<int32_t>(tokens.size());
    const int32_t tableOffset = static_cast<int32_t>(pageTables.size());
    pageTables.insert(pageTables.end(), seq.pageTable.begin(), seq.pageTable.end());
    for (int32_t i = 0; i < n; i++) {
      const int32_t pos = seq.startPos + i;
      tokens.push_back(seq.tokenIds[i]);
      positions.push_back(pos);
      slots.push_back(seq.pageTable[pos / pool_.pageSize] * pool_.pageSize + pos % pool_.pageSize);
    }
    if (useMma && n >= kMmaMinTokens)
      appendAttentionBlocks(mmaBlocks, tokenBase, n, tableOffset, seq.startPos, kAttentionMmaTokensPerBlock);
    else
      appendAttentionBlocks(blocks, tokenBase, n, tableOffset, seq.startPos, tokensPerBlock);

    // Sampling parameters shared by this sequence's sample rows.
    const SamplingParams& sp = seq.sampling;
    const int32_t editOffset = static_cast<int32_t>(edits.size());
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
    for (const auto& [id, e] : editById) edits.push_back(e);
    const int32_t allowedOffset = static_cast<int32_t>(allowed.size());
    allowed.insert(allowed.end(), sp.allowedTokenIds.begin(), sp.allowedTokenIds.end());
    const int32_t numTop = std::min(std::max(sp.numTopLogprobs, 0), V);
    const uint64_t seed = sp.hasSeed ? sp.seed : seedSource_();

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
        row.returnProbs = seq.returnProbs ? 1 : 0;
        row.seed = seed;
        row.position = int64_t{seq.startPos} + i + 1;
        maxTop = std::max(maxTop, numTop);
        if (row.mode == kRowStochastic) {
          row.stochasticIndex = static_cast<int32_t>(stochasticRows.size());
          stochasticRows.push_back(static_cast<int32_t>(rows.size()));
        }
      }
      rows.push_back(row);
      logitRowTokens.push_back(tokenBase + i);
      rowRefs.push_back(RowRef{static_cast<int32_t>(s), i, isSample[i] != 0});
    }
  }
  const int32_t numTokens = static_cast<int32_t>(tokens.size());
  const int32_t numRows = static_cast<int32_t>(rows.size());
  const int32_t numStochastic = static_cast<int32_t>(stochasticRows.size());
  if (numTokens == 0) return;

  // ---- upload the plan ----
  Packer packer;
  const size_t oTokens = packer.add(tokens), oPositions = packer.add(positions), oSlots = packer.add(slots),
               oTables = packer.add(pageTables), oBlocks = packer.add(blocks), oMmaBlocks = packer.add(mmaBlocks),
               oRowTokens = packer.add(logitRowTokens),
               oRows = packer.add(rows), oEdits = packer.add(edits), oAllowed = packer.add(allowed),
               oStochastic = packer.add(stochasticRows);
  ws_.hostMeta.ensure(packer.bytes());
  packer.copyTo(ws_.hostMeta.data());
  ws_.meta.ensure(packer.bytes());
  CUDA_CHECK(cudaMemcpyAsync(ws_.meta.as(), ws_.hostMeta.data(), packer.bytes(), cudaMemcpyHostToDevice, stream_));
  char* meta = ws_.meta.as<char>();
  auto at = [&](size_t offset) { return static_cast<void*>(meta + offset); };

  // ---- workspace ----
  const size_t eb = elementBytes();
  const int64_t N = numTokens, H = c.hiddenSize, D = c.headDim, I = c.intermediateSize;
  const int64_t qkvWidth = (int64_t{c.numHeads} + 2 * c.numKvHeads) * D, qWidth = int64_t{c.numHeads} * D;
  ws_.residual.ensure(static_cast<size_t>(N * H) * sizeof(float));
  ws_.normed.ensure(static_cast<size_t>(N * H) * eb);
  ws_.qkv.ensure(static_cast<size_t>(N * qkvWidth) * eb);
  ws_.q.ensure(static_cast<size_t>(N * qWidth) * eb);
  ws_.attnOut.ensure(static_cast<size_t>(N * qWidth) * eb);
  ws_.proj.ensure(static_cast<size_t>(N * H) * eb);
  ws_.gateUp.ensure(static_cast<size_t>(N * 2 * I) * eb);
  ws_.act.ensure(static_cast<size_t>(N * I) * eb);
  const int64_t R = std::max(numRows, 1);
  ws_.gathered.ensure(static_cast<size_t>(R * H) * eb);
  ws_.logits.ensure(static_cast<size_t>(R * V) * sizeof(float));
  ws_.work.ensure(static_cast<size_t>(R * V) * sizeof(float));
  const int32_t topWidth = std::max(maxTop, 1);
  // results: tokenIds, logprobs, targetLogprobs, rowLogSumExp [R] each, topIds, topLogprobs [R, topWidth]
  const size_t resultBytes = static_cast<size_t>(R) * 4 * 4 + static_cast<size_t>(R * topWidth) * 8;
  ws_.results.ensure(resultBytes);
  ws_.hostResults.ensure(resultBytes);
  char* res = ws_.results.as<char>();
  SampleResults results;
  results.tokenIds = reinterpret_cast<int32_t*>(res);
  results.logprobs = reinterpret_cast<float*>(res + R * 4);
  results.targetLogprobs = reinterpret_cast<float*>(res + R * 8);
  float* rowLogSumExp = reinterpret_cast<float*>(res + R * 12);
  results.topIds = reinterpret_cast<int32_t*>(res + R * 16);
  results.topLogprobs = reinterpret_cast<float*>(res + R * 16 + R * topWidth * 4);
  if (numStochastic > 0) {
    const size_t cells = static_cast<size_t>(numStochastic) * V;
    ws_.sortKeysIn.ensure(cells * 4);
    ws_.sortKeysOut.ensure(cells * 4);
    ws_.sortIdsIn.ensure(cells * 4);
    ws_.sortIdsOut.ensure(cells * 4 + static_cast<size_t>(numStochastic + 1) * 4);  // + segment offsets
    ws_.dense.ensure(cells * 8);
    ws_.sortTemp.ensure(std::max<size_t>(samplingSortTempBytes(numStochastic, V), 256));
  }

  // Attention arguments shared by every layer; split-KV for the CUDA-core kernel when its blocks
  // alone cannot fill the GPU.
  AttentionArgs attn;
  attn.q = ws_.q.as();
  attn.out = ws_.attnOut.as();
  attn.pageTables = static_cast<const int32_t*>(at(oTables));
  attn.positions = static_cast<const int32_t*>(at(oPositions));
  attn.numHeads = c.numHeads;
  attn.numKvHeads = c.numKvHeads;
  attn.headDim = c.headDim;
  attn.pageSize = pool_.pageSize;
  attn.headsPerBlock = headsPerBlock;
  attn.scale = 1.0f / std::sqrt(static_cast<float>(c.headDim));
  AttentionArgs simtAttn = attn, mmaAttn = attn;
  simtAttn.blocks = static_cast<const AttentionBlock*>(at(oBlocks));
  simtAttn.numBlocks = static_cast<int32_t>(blocks.size());
  mmaAttn.blocks = static_cast<const AttentionBlock*>(at(oMmaBlocks));
  mmaAttn.numBlocks = static_cast<int32_t>(mmaBlocks.size());
  if (!blocks.empty() && !splitKvDisabled()) {
    int32_t maxKeys = 0;
    for (const AttentionBlock& b : blocks) maxKeys = std::max(maxKeys, b.numKeys);
    simtAttn.numSplits = attentionSplitsFor(simtAttn.numBlocks, c.numHeads / headsPerBlock, maxKeys, numSms_);
  }
  if (const int64_t floats = attentionSplitFloats(simtAttn); floats > 0) {
    ws_.attnSplits.ensure(static_cast<size_t>(floats) * sizeof(float));
    setAttentionSplitBuffer(simtAttn, ws_.attnSplits.as<float>());
  }

  // ---- layers ----
  const auto* dTokens = static_cast<const int32_t*>(at(oTokens));
  const auto* dPositions = static_cast<const int32_t*>(at(oPositions));
  float* residual = ws_.residual.as<float>();
  embedTokens(dTokens, embedding_.as(), dtype_, residual, numTokens, c.hiddenSize, stream_);
  const float eps = static_cast<float>(c.rmsNormEps);
  for (int32_t l = 0; l < c.numLayers; l++) {
    const LayerWeights& L = layers_[l];
    addRmsNorm(residual, l == 0 ? nullptr : ws_.proj.as(), L.inputNorm.as<float>(), ws_.normed.as(), dtype_,
               numTokens, c.hiddenSize, eps, stream_);
    gemm_->run(ws_.normed.as(), L.qkv.as(), ws_.qkv.as(), numTokens, static_cast<int32_t>(qkvWidth), c.hiddenSize,
               dtype_, dtype_);
    QkvRopeArgs rope;
    rope.qkv = ws_.qkv.as();
    rope.bias = c.attentionBias ? L.qkvBias.as<float>() : nullptr;
    rope.qNormWeight = c.qkNorm ? L.qNorm.as<float>() : nullptr;
    rope.kNormWeight = c.qkNorm ? L.kNorm.as<float>() : nullptr;
    rope.invFreq = invFreq_.as<float>();
    rope.positions = dPositions;
    rope.slotMapping = static_cast<const int32_t*>(at(oSlots));
    rope.q = ws_.q.as();
    rope.kCache = kCache(l);
    rope.vCache = vCache(l);
    rope.numTokens = numTokens;
    rope.numHeads = c.numHeads;
    rope.numKvHeads = c.numKvHeads;
    rope.headDim = c.headDim;
    rope.normEps = eps;
    qkvRopeCache(rope, dtype_, stream_);
    if (layerHook_) {
      // This layer's pages are final once the stream passes here.
      layerCalls_[l] = LayerCall{&layerHook_, l};
      CUDA_CHECK(cudaLaunchHostFunc(
          stream_, [](void* data) {
            const auto* call = static_cast<const LayerCall*>(data);
            (*call->hook)(call->layer);
          },
          &layerCalls_[l]));
    }
    simtAttn.kCache = mmaAttn.kCache = kCache(l);
    simtAttn.vCache = mmaAttn.vCache = vCache(l);
    pagedAttention(simtAttn, dtype_, stream_);
    prefillAttentionMma(mmaAttn, dtype_, stream_);
    gemm_->run(ws_.attnOut.as(), L.o.as(), ws_.proj.as(), numTokens, c.hiddenSize, static_cast<int32_t>(qWidth),
               dtype_, dtype_);
    addRmsNorm(residual, ws_.proj.as(), L.postNorm.as<float>(), ws_.normed.as(), dtype_, numTokens, c.hiddenSize, eps,
               stream_);
    gemm_->run(ws_.normed.as(), L.gateUp.as(), ws_.gateUp.as(), numTokens, static_cast<int32_t>(2 * I), c.hiddenSize,
               dtype_, dtype_);
    siluAndMul(ws_.gateUp.as(), ws_.act.as(), dtype_, numTokens, c.intermediateSize, stream_);
    gemm_->run(ws_.act.as(), L.down.as(), ws_.proj.as(), numTokens, c.hiddenSize, c.intermediateSize, dtype_, dtype_);
  }
  addRmsNorm(residual, ws_.proj.as(), finalNorm_.as<float>(), ws_.normed.as(), dtype_, numTokens, c.hiddenSize, eps,
             stream_);

  // ---- logits and sampling ----
  if (numRows > 0) {
    gatherRows(ws_.normed.as(), static_cast<const int32_t*>(at(oRowTokens)), ws_.gathered.as(), dtype_, numRows,
               c.hiddenSize, stream_);
    const void* head = c.tieWordEmbeddings ? embedding_.as() : lmHead_.as();
    gemm_->run(ws_.gathered.as(), head, ws_.logits.as(), numRows, V, c.hiddenSize, dtype_, DType::F32);
    SamplingArgs sa;
    sa.logits = ws_.logits.as<float>();
    sa.work = ws_.work.as<float>();
    sa.rows = static_cast<const SampleRow*>(at(oRows));
    sa.edits = static_cast<const LogitEdit*>(at(oEdits));
    sa.allowed = static_cast<const int32_t*>(at(oAllowed));
    sa.numRows = numRows;
    sa.vocab = V;
    sa.maxTop = topWidth;
    sa.results = results;
    sa.rowLogSumExp = rowLogSumExp;
    sa.numStochastic = numStochastic;
    if (numStochastic > 0) {
      sa.stochasticRows = static_cast<const int32_t*>(at(oStochastic));
      sa.keysIn = ws_.sortKeysIn.as<float>();
      sa.sortedKeys = ws_.sortKeysOut.as<float>();
      sa.idsIn = ws_.sortIdsIn.as<int32_t>();
      sa.sortedIds = ws_.sortIdsOut.as<int32_t>();
      sa.segmentOffsets = ws_.sortIdsOut.as<int32_t>() + static_cast<size_t>(numStochastic) * V;
      sa.dense = ws_.dense.as<double>();
      sa.sortTemp = ws_.sortTemp.as();
      sa.sortTempBytes = ws_.sortTemp.bytes();
    }
    sampleRows(sa, stream_);
    CUDA_CHECK(cudaMemcpyAsync(ws_.hostResults.data(), res, resultBytes, cudaMemcpyDeviceToHost, stream_));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream_));

  // ---- outputs ----
  const char* hostRes = ws_.hostResults.data();
  const auto* hTokenIds = reinterpret_cast<const int32_t*>(hostRes);
  const auto* hLogprobs = reinterpret_cast<const float*>(hostRes + R * 4);
  const auto* hTarget = reinterpret_cast<const float*>(hostRes + R * 8);
  const auto* hTopIds = reinterpret_cast<const int32_t*>(hostRes + R * 16);
  const auto* hTopLogprobs = reinterpret_cast<const float*>(hostRes + R * 16 + R * topWidth * 4);
  for (size_t s = 0; s < batch.size(); s++)
    if (!batch[s].targetIds.empty()) out[s].targetLogprobs.assign(batch[s].tokenIds.size(), 0.0f);
  for (int32_t r = 0; r < numRows; r++) {
    const RowRef& ref = rowRefs[r];
    const SequenceInput& seq = batch[ref.sequence];
    SequenceOutput& so = out[ref.sequence];
    if (!seq.targetIds.empty()) so.targetLogprobs[ref.index] = hTarget[r];
    if (!ref.sample) continue;
    SampleOutput sample;
    sample.index = ref.index;
    sample.tokenId = hTokenIds[r];
    sample.logprob = hLogprobs[r];
    for (int32_t k = 0; k < rows[r].numTop; k++)
      sample.topLogprobs.emplace_back(hTopIds[r * topWidth + k], hTopLogprobs[r * topWidth + k]);
    if (seq.returnLogits) {
      sample.logits.resize(static_cast<size_t>(V));
      CUDA_CHECK(cudaMemcpy(sample.logits.data(), ws_.logits.as<float>() + int64_t{r} * V, sizeof(float) * V,
                            cudaMemcpyDeviceToHost));
    }
    if (seq.returnProbs) {
      sample.probs.assign(static_cast<size_t>(V), 0.0f);
      if (rows[r].mode == kRowGreedy) {
        sample.probs[sample.tokenId] = 1.0f;
      } else {
        CUDA_CHECK(cudaMemcpy(sample.probs.data(), ws_.work.as<float>() + int64_t{r} * V, sizeof(float) * V,
                              cudaMemcpyDeviceToHost));
      }
    }
    so.samples.push_back(std::move(sample));
  }
}

}  // namespace tandem::cuda
