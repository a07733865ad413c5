// The boundary between the model-independent executor core (loader, batching, binding) and a
// compute backend (cpu/, cuda/). A backend owns weights on its device, the KV pool, forward
// passes over page tables, and sampling. Everything here is plain data: no N-API types.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tandem/model_config.h"
#include "tandem/weights.h"

namespace tandem {

enum class DType : int32_t { F32 = 0, BF16 = 1, F16 = 2 };

struct SamplingParams {
  float temperature = 1.0f;  // 0: greedy
  int32_t topK = 0;          // <= 0: off
  float topP = 1.0f;         // 1: off
  float minP = 0.0f;         // 0: off
  float repetitionPenalty = 1.0f;
  float frequencyPenalty = 0.0f;
  float presencePenalty = 0.0f;
  std::vector<std::pair<int32_t, float>> logitBias;
  bool hasSeed = false;
  uint64_t seed = 0;
  int32_t numTopLogprobs = 0;
  std::vector<int32_t> allowedTokenIds;  // empty: all allowed
  // Bit (id & 31) of word (id >> 5) set: id may be sampled (constrained decoding); empty: all
  // allowed. At least ceil(vocab / 32) words; bits at or past vocab are ignored. With both this
  // and allowedTokenIds, a token must be in both.
  std::vector<uint32_t> allowedTokenMask;
};

struct SequenceInput {
  std::vector<int32_t> tokenIds;
  int32_t startPos = 0;
  std::vector<int32_t> pageTable;
  std::vector<int32_t> sampleIndices;
  SamplingParams sampling;
  std::vector<int32_t> promptTokenIds;
  std::vector<int32_t> outputTokenIds;
  std::vector<int32_t> targetIds;  // empty: no teacher forcing
  bool returnLogits = false;
  bool returnProbs = false;
};

struct SampleOutput {
  int32_t index = 0;
  int32_t tokenId = 0;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> topLogprobs;
  std::vector<float> logits;  // [vocab] when requested
  std::vector<float> probs;   // [vocab] when requested
};

struct SequenceOutput {
  std::vector<SampleOutput> samples;
  std::vector<float> targetLogprobs;  // [tokenIds.size()] when targetIds given
};

struct KvPoolInfo {
  DType dtype = DType::F32;
  int32_t numPages = 0;
  int32_t pageSize = 0;
  int64_t pageBytes = 0;   // one page of K (or V) of one layer
  int64_t totalBytes = 0;  // [numLayers][2][numPages][pageSize][numKvHeads][headDim]
  uintptr_t baseAddress = 0;
};

struct KvPoolRequest {
  int32_t pageSize = 16;
  int32_t numPages = 0;          // > 0: exactly this many
  int64_t kvCacheBytes = 0;      // CPU, when numPages == 0
  double kvCacheFraction = 0.85; // CUDA, when numPages == 0
};

// Called once per layer, in layer order, as soon as that layer's new K/V are in the pool (on
// CUDA: from a notifier thread that waits on a per-layer device event, so the compute stream never
// stops for the host), and every call has returned before forward() returns. It must return
// quickly and must not call back into the backend: a KV sender starts copying that layer's pages
// from it while the later layers compute.
using LayerDoneHook = std::function<void(int32_t layer)>;

// How long the device worked on the last forward pass and how long it sat idle before it (since
// the end of the previous pass): the executor's own clock for "is the GPU waiting for the host".
// Negative: not measured (the first pass has no gap).
struct StepTiming {
  double deviceMs = -1;
  double gapMs = -1;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string deviceName() const = 0;  // "cpu" or "cuda:N"
  virtual DType computeDtype() const = 0;
  // Uploads / converts weights. Called once, off the JS thread.
  virtual void loadWeights(const ModelConfig& config, const WeightStore& weights) = 0;
  virtual KvPoolInfo allocateKvPool(const KvPoolRequest& request) = 0;
  // One batched forward pass: writes new K/V into the pages, samples where asked.
  // Throws tandem::Error subclasses (errors.h) on bad input; never leaves the pool half-written
  // for a sequence it rejected before computing.
  virtual void forward(const std::vector<SequenceInput>& batch, std::vector<SequenceOutput>& out,
                       const LayerDoneHook& onLayerDone) = 0;
  void forward(const std::vector<SequenceInput>& batch, std::vector<SequenceOutput>& out) {
    forward(batch, out, LayerDoneHook{});
  }
  // The last forward pass's device time and the idle gap before it (CUDA: device events).
  virtual StepTiming lastStepTiming() const { return {}; }
};

std::unique_ptr<Backend> makeCpuBackend(DType computeDtype, int32_t numThreads);
#ifdef TANDEM_WITH_CUDA
std::unique_ptr<Backend> makeCudaBackend(int32_t deviceIndex, DType computeDtype);
#endif

}  // namespace tandem
