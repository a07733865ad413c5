#include "common/executor.h"

#include <omp.h>

#include <algorithm>

#include "tandem/errors.h"

namespace tandem {

std::unique_ptr<Executor> Executor::open(const ExecutorOpenOptions& options) {
  auto ex = std::unique_ptr<Executor>(new Executor());
  ex->config_ = loadModelConfig(options.modelDir);
  ex->config_.roundRopeFrequenciesToStoredDtype = options.roundRopeFrequenciesToStoredDtype;
  auto weights = WeightStore::open(options.modelDir);
  DType dtype = DType::F32;
  if (options.dtype == "bfloat16") dtype = DType::BF16;
  else if (options.dtype == "float16") dtype = DType::F16;
  else if (!options.dtype.empty() && options.dtype != "float32")
    throw ConfigError("unknown compute dtype \"" + options.dtype + "\"");
  if (options.device == "cpu") {
    if (dtype != DType::F32) throw ConfigError("the CPU backend computes in float32 only (asked for " + options.dtype + ")");
    const int32_t threads = options.numThreads > 0 ? options.numThreads : omp_get_num_procs();
    ex->backend_ = makeCpuBackend(dtype, threads);
  } else if (options.device.rfind("cuda:", 0) == 0) {
#ifdef TANDEM_WITH_CUDA
    const int32_t index = std::stoi(options.device.substr(5));
    if (options.dtype.empty()) dtype = DType::BF16;
    ex->backend_ = makeCudaBackend(index, dtype);
#else
    throw DeviceError("this addon was built without CUDA (device " + options.device + ")");
#endif
  } else {
    throw ConfigError("unknown device \"" + options.device + "\" (expected cpu or cuda:N)");
  }
  ex->backend_->loadWeights(ex->config_, *weights);
  ex->kvPool_ = ex->backend_->allocateKvPool(options.kv);
  return ex;
}

void Executor::forward(const std::vector<SequenceInput>& batch, std::vector<SequenceOutput>& out,
                       const LayerDoneHook& onLayerDone) {
  std::lock_guard<std::mutex> lock(mutex_);
  validateBatch(batch, config_, kvPool_);
  out.clear();
  out.resize(batch.size());
  if (batch.empty()) return;
  backend_->forward(batch, out, onLayerDone);
}

void validateBatch(const std::vector<SequenceInput>& batch, const ModelConfig& config, const KvPoolInfo& pool) {
  for (size_t s = 0; s < batch.size(); s++) {
    const SequenceInput& seq = batch[s];
    const std::string where = "sequence " + std::to_string(s) + ": ";
    const int64_t numTokens = static_cast<int64_t>(seq.tokenIds.size());
    if (numTokens == 0) throw InvalidInputError(where + "tokenIds is empty");
    if (seq.startPos < 0) throw InvalidInputError(where + "startPos is negative");
    const int64_t endPos = seq.startPos + numTokens;
    if (endPos > config.maxPositionEmbeddings)
      throw InvalidInputError(where + "positions up to " + std::to_string(endPos - 1) + " exceed max_position_embeddings " +
                              std::to_string(config.maxPositionEmbeddings));
    for (int32_t id : seq.tokenIds)
      if (id < 0 || id >= config.vocabSize)
        throw InvalidInputError(where + "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                std::to_string(config.vocabSize) + ")");
    const int64_t pagesNeeded = (endPos + pool.pageSize - 1) / pool.pageSize;
    if (static_cast<int64_t>(seq.pageTable.size()) < pagesNeeded)
      throw InvalidInputError(where + "pageTable has " + std::to_string(seq.pageTable.size()) + " pages, positions [0, " +
                              std::to_string(endPos) + ") need " + std::to_string(pagesNeeded));
    for (int64_t p = 0; p < pagesNeeded; p++) {
      const int32_t page = seq.pageTable[p];
      if (page < 0 || page >= pool.numPages)
        throw InvalidInputError(where + "page id " + std::to_string(page) + " is outside the pool [0, " +
                                std::to_string(pool.numPages) + ")");
    }
    for (int32_t idx : seq.sampleIndices)
      if (idx < 0 || idx >= numTokens)
        throw InvalidInputError(where + "sample index " + std::to_string(idx) + " is outside tokenIds");
    if (!seq.targetIds.empty()) {
      if (static_cast<int64_t>(seq.targetIds.size()) != numTokens)
        throw InvalidInputError(where + "targetIds must have one id per token (" + std::to_string(numTokens) + ")");
      for (int32_t id : seq.targetIds)
        if (id < 0 || id >= config.vocabSize)
          throw InvalidInputError(where + "target id " + std::to_string(id) + " is outside the vocabulary");
    }
    const SamplingParams& sp = seq.sampling;
    if (!(sp.temperature >= 0.0f)) throw InvalidInputError(where + "temperature must be >= 0");
    if (!(sp.topP > 0.0f && sp.topP <= 1.0f)) throw InvalidInputError(where + "topP must be in (0, 1]");
    if (!(sp.minP >= 0.0f && sp.minP <= 1.0f)) throw InvalidInputError(where + "minP must be in [0, 1]");
    if (!(sp.repetitionPenalty > 0.0f)) throw InvalidInputError(where + "repetitionPenalty must be > 0");
    if (sp.numTopLogprobs < 0) throw InvalidInputError(where + "numTopLogprobs must be >= 0");
    // In-vocabulary ids: a non-empty allowed set always leaves at least one candidate.
    for (int32_t id : sp.allowedTokenIds)
      if (id < 0 || id >= config.vocabSize) throw InvalidInputError(where + "allowed token id " + std::to_string(id) + " is outside the vocabulary");
    if (!sp.allowedTokenMask.empty()) {
      // Long enough for every id, and allowing one at least (with the id list: one of those).
      const size_t words = (static_cast<size_t>(config.vocabSize) + 31) / 32;
      if (sp.allowedTokenMask.size() < words)
        throw InvalidInputError(where + "allowedTokenMask has " + std::to_string(sp.allowedTokenMask.size()) +
                                " words, the vocabulary needs " + std::to_string(words));
      auto allows = [&](int32_t id) { return ((sp.allowedTokenMask[id >> 5] >> (id & 31)) & 1u) != 0; };
      bool any = false;
      if (!sp.allowedTokenIds.empty()) {
        for (int32_t id : sp.allowedTokenIds) any = any || allows(id);
      } else {
        for (int32_t id = 0; id < config.vocabSize && !any; id += 32) {
          const uint32_t bits = sp.allowedTokenMask[id >> 5];
          const int32_t inVocab = std::min(32, config.vocabSize - id);
          any = (inVocab == 32 ? bits : bits & ((1u << inVocab) - 1u)) != 0;
        }
      }
      if (!any) throw InvalidInputError(where + "allowedTokenMask allows no token of the vocabulary");
    }
  }
}

}  // namespace tandem
