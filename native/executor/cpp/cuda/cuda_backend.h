// The CUDA backend: weights in the compute dtype on one device, the paged KV pool, batched
// forward passes (planned in forward_plan.cc, run in cuda_forward.cc) and device sampling. Not
// thread-safe: the Executor serialises calls; every public method re-selects its device first
// (calls arrive on worker threads).
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <random>
#include <vector>

#include "device_buffer.h"
#include "forward_plan.h"
#include "gemm.h"
#include "layer_notifier.h"
#include "tandem/backend.h"

namespace tandem::cuda {

struct LayerWeights {
  DeviceBuffer qkv;          // [(numHeads + 2 numKvHeads) headDim, hidden] T (q, k, v rows stacked)
  DeviceBuffer qkvBias;      // [(numHeads + 2 numKvHeads) headDim] f32, when the model has biases
  DeviceBuffer o;            // [hidden, numHeads headDim] T
  DeviceBuffer gateUp;       // [2 intermediate, hidden] T (gate rows, then up rows)
  DeviceBuffer down;         // [hidden, intermediate] T
  DeviceBuffer inputNorm;    // [hidden] f32
  DeviceBuffer postNorm;     // [hidden] f32
  DeviceBuffer qNorm, kNorm; // [headDim] f32 (Qwen3)
};

// Per-forward scratch, grown to the largest batch seen.
struct Workspace {
  DeviceBuffer residual;   // [numTokens, hidden] f32
  DeviceBuffer normed;     // [numTokens, hidden] T
  DeviceBuffer qkv;        // [numTokens, (numHeads + 2 numKvHeads) headDim] T
  DeviceBuffer q;          // [numTokens, numHeads, headDim] T
  DeviceBuffer attnOut;    // [numTokens, numHeads, headDim] T
  DeviceBuffer proj;       // [numTokens, hidden] T (o-proj and down-proj outputs)
  DeviceBuffer gateUp;     // [numTokens, 2 intermediate] T
  DeviceBuffer act;        // [numTokens, intermediate] T
  DeviceBuffer gathered;   // [numRows, hidden] T
  DeviceBuffer logits;     // [numRows, vocab] f32
  DeviceBuffer work;       // [numRows, vocab] f32
  DeviceBuffer meta;       // packed per-call metadata (tokens, positions, slots, tables, rows, ...)
  DeviceBuffer results;    // packed sampling results
  DeviceBuffer sortKeysIn, sortKeysOut, sortIdsIn, sortIdsOut, dense, sortTemp;  // stochastic rows
  DeviceBuffer attnSplits;  // split-KV partials: acc [.., headDim], then max and sum (f32)
  PinnedBuffer hostMeta;
  PinnedBuffer hostResults;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(int32_t deviceIndex, DType computeDtype);
  ~CudaBackend() override;

  std::string deviceName() const override { return "cuda:" + std::to_string(device_); }
  DType computeDtype() const override { return dtype_; }
  void loadWeights(const ModelConfig& config, const WeightStore& weights) override;
  KvPoolInfo allocateKvPool(const KvPoolRequest& request) override;
  using Backend::forward;
  void forward(const std::vector<SequenceInput>& batch, std::vector<SequenceOutput>& out,
               const LayerDoneHook& onLayerDone) override;
  StepTiming lastStepTiming() const override { return timing_; }

 private:
  // Copies a stored tensor to the device and converts it into dst (+ dstOffset elements).
  void upload(const TensorView& tensor, void* dst, DType dstType, int64_t dstOffsetElements);
  void uploadTo(DeviceBuffer& buffer, const TensorView& tensor, DType dstType);
  size_t elementBytes() const;
  void* kCache(int32_t layer) const;
  void* vCache(int32_t layer) const;

  // The steps of forward, in stream order (cuda_forward.cc).
  // Installs this call's layer hook once any earlier call's callbacks have run.
  void armLayerHook(const LayerDoneHook& onLayerDone);
  // Records the pass's start event (after the previous pass's end on the same stream).
  void markPassStart();
  // Records the pass's end event and, once the stream is done, its device time and gap.
  void markPassEnd();
  // Packs the plan's arrays into Workspace::hostMeta and copies them to Workspace::meta (async).
  DevicePlan uploadPlan(const ForwardPlan& plan);
  // Grows the workspace for the plan's tokens and rows; says where the sampling results go.
  ResultLayout reserveWorkspace(const ForwardPlan& plan);
  // Embedding, then every layer: norm, QKV + RoPE + KV write (+ layer hook), attention, o-proj,
  // norm, MLP. Leaves the last layer's residual and down-proj output in the workspace.
  void runLayers(const ForwardPlan& plan, const DevicePlan& dev);
  // Attention arguments shared by every layer (runLayers sets each layer's caches): the CUDA-core
  // blocks, with their split-KV partials, and the tensor-core blocks.
  void prepareAttention(const ForwardPlan& plan, const DevicePlan& dev, AttentionArgs& simtAttn,
                        AttentionArgs& mmaAttn);
  // Records that layer's event after its KV write; the notifier reports it to layerHook_.
  void enqueueLayerDone(int32_t layer);
  // Final norm, then for the plan's rows: gather, LM head (f32 logits), device sampling.
  void sampleLogits(const ForwardPlan& plan, const DevicePlan& dev, const ResultLayout& layout);
  // Copies the results back, waits for the stream, fills out (and the logits / probs rows asked for).
  void readBack(const std::vector<SequenceInput>& batch, const ForwardPlan& plan, const ResultLayout& layout,
                std::vector<SequenceOutput>& out);

  int32_t device_;
  int numSms_ = 0;  // streaming multiprocessors: how far attention splits a small batch's keys
  DType dtype_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<Gemm> gemm_;
  ModelConfig config_;
  bool loaded_ = false;

  DeviceBuffer embedding_;  // [vocab, hidden] T
  DeviceBuffer lmHead_;     // [vocab, hidden] T; empty when tied to embedding_
  DeviceBuffer finalNorm_;  // [hidden] f32
  DeviceBuffer invFreq_;    // [headDim / 2] f32
  DeviceBuffer staging_;    // raw stored bytes of one tensor on its way in
  std::vector<LayerWeights> layers_;

  DeviceBuffer kvPool_;  // [numLayers][2][numPages][pageSize][numKvHeads][headDim] T
  KvPoolInfo pool_;
  Workspace ws_;
  std::mt19937_64 seedSource_;
  // The forward pass's layer hook, reported from per-layer device events (layer_notifier.h).
  LayerDoneHook layerHook_;
  LayerNotifier layerNotifier_;
  // Device time of each pass and the idle gap before it: events around the pass's stream work.
  cudaEvent_t passStart_ = nullptr, passEnd_ = nullptr, previousPassEnd_ = nullptr;
  bool hasPreviousPass_ = false;
  StepTiming timing_;
};

}  // namespace tandem::cuda
