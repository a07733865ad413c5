// CudaBackend::forward and its steps: plan the batch on the host (forward_plan.cc), upload the
// plan in one copy, size the workspace, run the layers, sample on the device, and copy back only
// the small results (plus logits / probs rows that were asked for). One stream, in that order.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cuda_backend.h"
#include "cuda_check.h"
#include "forward_plan.h"
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

}  // namespace

void CudaBackend::forward(const std::vector<SequenceInput>& batch, std::vector<SequenceOutput>& out,
                          const LayerDoneHook& onLayerDone) {
  CUDA_CHECK(cudaSetDevice(device_));
  if (!loaded_ || pool_.numPages == 0) throw InvalidInputError("forward before loadWeights / allocateKvPool");
  const ForwardPlan plan = planForward(batch, config_, pool_, dtype_, numSms_, seedSource_);
  out.assign(batch.size(), SequenceOutput{});
  if (plan.numTokens == 0) return;
  armLayerHook(onLayerDone);
  // Every layer reported (or the pass failed) before this returns: no hook call outlives it.
  struct FinishLayers {
    LayerNotifier& notifier;
    ~FinishLayers() { notifier.finish(); }
  } finishLayers{layerNotifier_};
  markPassStart();
  const DevicePlan dev = uploadPlan(plan);
  const ResultLayout results = reserveWorkspace(plan);
  runLayers(plan, dev);
  sampleLogits(plan, dev, results);
  readBack(batch, plan, results, out);
  markPassEnd();
}

void CudaBackend::armLayerHook(const LayerDoneHook& onLayerDone) {
  layerHook_ = onLayerDone;
  if (layerHook_) layerNotifier_.begin(config_.numLayers, &layerHook_);
}

void CudaBackend::markPassStart() {
  if (passStart_ == nullptr) {
    CUDA_CHECK(cudaEventCreate(&passStart_));
    CUDA_CHECK(cudaEventCreate(&passEnd_));
    CUDA_CHECK(cudaEventCreate(&previousPassEnd_));
  }
  CUDA_CHECK(cudaEventRecord(passStart_, stream_));
}

void CudaBackend::markPassEnd() {
  // readBack synchronised the stream after the last copy: the end event is recorded on an idle
  // stream, so it times the pass's device work plus nothing.
  CUDA_CHECK(cudaEventRecord(passEnd_, stream_));
  CUDA_CHECK(cudaEventSynchronize(passEnd_));
  float deviceMs = 0, gapMs = 0;
  CUDA_CHECK(cudaEventElapsedTime(&deviceMs, passStart_, passEnd_));
  timing_.deviceMs = deviceMs;
  timing_.gapMs = -1;
  if (hasPreviousPass_) {
    CUDA_CHECK(cudaEventElapsedTime(&gapMs, previousPassEnd_, passStart_));
    timing_.gapMs = gapMs;
  }
  std::swap(passEnd_, previousPassEnd_);
  hasPreviousPass_ = true;
}

DevicePlan CudaBackend::uploadPlan(const ForwardPlan& plan) {
  Packer packer;
  const size_t oTokens = packer.add(plan.tokens), oPositions = packer.add(plan.positions),
               oSlots = packer.add(plan.slots), oTables = packer.add(plan.pageTables),
               oBlocks = packer.add(plan.blocks), oMmaBlocks = packer.add(plan.mmaBlocks),
               oRowTokens = packer.add(plan.logitRowTokens), oRows = packer.add(plan.rows),
               oEdits = packer.add(plan.edits), oAllowed = packer.add(plan.allowed),
               oMasks = packer.add(plan.masks),
               oStochastic = packer.add(plan.stochasticRows);
  ws_.hostMeta.ensure(packer.bytes());
  packer.copyTo(ws_.hostMeta.data());
  ws_.meta.ensure(packer.bytes());
  CUDA_CHECK(cudaMemcpyAsync(ws_.meta.as(), ws_.hostMeta.data(), packer.bytes(), cudaMemcpyHostToDevice, stream_));
  char* meta = ws_.meta.as<char>();
  auto at = [&](size_t offset) { return static_cast<void*>(meta + offset); };
  DevicePlan dev;
  dev.tokens = static_cast<const int32_t*>(at(oTokens));
  dev.positions = static_cast<const int32_t*>(at(oPositions));
  dev.slots = static_cast<const int32_t*>(at(oSlots));
  dev.pageTables = static_cast<const int32_t*>(at(oTables));
  dev.blocks = static_cast<const AttentionBlock*>(at(oBlocks));
  dev.mmaBlocks = static_cast<const AttentionBlock*>(at(oMmaBlocks));
  dev.logitRowTokens = static_cast<const int32_t*>(at(oRowTokens));
  dev.rows = static_cast<const SampleRow*>(at(oRows));
  dev.edits = static_cast<const LogitEdit*>(at(oEdits));
  dev.allowed = static_cast<const int32_t*>(at(oAllowed));
  dev.masks = static_cast<const uint32_t*>(at(oMasks));
  dev.stochasticRows = static_cast<const int32_t*>(at(oStochastic));
  return dev;
}

ResultLayout CudaBackend::reserveWorkspace(const ForwardPlan& plan) {
  const ModelConfig& c = config_;
  const int32_t V = c.vocabSize;
  const size_t eb = elementBytes();
  const int64_t N = plan.numTokens, H = c.hiddenSize, D = c.headDim, I = c.intermediateSize;
  const int64_t qkvWidth = (int64_t{c.numHeads} + 2 * c.numKvHeads) * D, qWidth = int64_t{c.numHeads} * D;
  ws_.residual.ensure(static_cast<size_t>(N * H) * sizeof(float));
  ws_.normed.ensure(static_cast<size_t>(N * H) * eb);
  ws_.qkv.ensure(static_cast<size_t>(N * qkvWidth) * eb);
  ws_.q.ensure(static_cast<size_t>(N * qWidth) * eb);
  ws_.attnOut.ensure(static_cast<size_t>(N * qWidth) * eb);
  ws_.proj.ensure(static_cast<size_t>(N * H) * eb);
  ws_.gateUp.ensure(static_cast<size_t>(N * 2 * I) * eb);
  ws_.act.ensure(static_cast<size_t>(N * I) * eb);
  const int64_t R = std::max(plan.numRows, 1);
  ws_.gathered.ensure(static_cast<size_t>(R * H) * eb);
  ws_.logits.ensure(static_cast<size_t>(R * V) * sizeof(float));
  ws_.work.ensure(static_cast<size_t>(R * V) * sizeof(float));
  const int32_t topWidth = std::max(plan.maxTop, 1);
  // results: tokenIds, logprobs, targetLogprobs, rowLogSumExp [R] each, topIds, topLogprobs [R, topWidth]
  const size_t resultBytes = static_cast<size_t>(R) * 4 * 4 + static_cast<size_t>(R * topWidth) * 8;
  ws_.results.ensure(resultBytes);
  ws_.hostResults.ensure(resultBytes);
  const int32_t numStochastic = plan.numStochastic;
  if (numStochastic > 0) {
    const size_t cells = static_cast<size_t>(numStochastic) * V;
    ws_.sortKeysIn.ensure(cells * 4);
    ws_.sortKeysOut.ensure(cells * 4);
    ws_.sortIdsIn.ensure(cells * 4);
    ws_.sortIdsOut.ensure(cells * 4 + static_cast<size_t>(numStochastic + 1) * 4);  // + segment offsets
    ws_.dense.ensure(cells * 8);
    ws_.sortTemp.ensure(std::max<size_t>(samplingSortTempBytes(numStochastic, V), 256));
  }
  return ResultLayout{R, topWidth, resultBytes};
}

void CudaBackend::runLayers(const ForwardPlan& plan, const DevicePlan& dev) {
  const ModelConfig& c = config_;
  const int32_t numTokens = plan.numTokens;
  const int64_t D = c.headDim, I = c.intermediateSize;
  const int64_t qkvWidth = (int64_t{c.numHeads} + 2 * c.numKvHeads) * D, qWidth = int64_t{c.numHeads} * D;
  AttentionArgs simtAttn, mmaAttn;
  prepareAttention(plan, dev, simtAttn, mmaAttn);

  float* residual = ws_.residual.as<float>();
  embedTokens(dev.tokens, embedding_.as(), dtype_, residual, numTokens, c.hiddenSize, stream_);
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
    rope.positions = dev.positions;
    rope.slotMapping = dev.slots;
    rope.q = ws_.q.as();
    rope.kCache = kCache(l);
    rope.vCache = vCache(l);
    rope.numTokens = numTokens;
    rope.numHeads = c.numHeads;
    rope.numKvHeads = c.numKvHeads;
    rope.headDim = c.headDim;
    rope.normEps = eps;
    qkvRopeCache(rope, dtype_, stream_);
    if (layerHook_) enqueueLayerDone(l);
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
}

void CudaBackend::prepareAttention(const ForwardPlan& plan, const DevicePlan& dev, AttentionArgs& simtAttn,
                                   AttentionArgs& mmaAttn) {
  const ModelConfig& c = config_;
  AttentionArgs attn;
  attn.q = ws_.q.as();
  attn.out = ws_.attnOut.as();
  attn.pageTables = dev.pageTables;
  attn.positions = dev.positions;
  attn.numHeads = c.numHeads;
  attn.numKvHeads = c.numKvHeads;
  attn.headDim = c.headDim;
  attn.pageSize = pool_.pageSize;
  attn.headsPerBlock = plan.headsPerBlock;
  attn.scale = 1.0f / std::sqrt(static_cast<float>(c.headDim));
  simtAttn = attn;
  mmaAttn = attn;
  simtAttn.blocks = dev.blocks;
  simtAttn.numBlocks = static_cast<int32_t>(plan.blocks.size());
  simtAttn.numSplits = plan.numSplits;
  mmaAttn.blocks = dev.mmaBlocks;
  mmaAttn.numBlocks = static_cast<int32_t>(plan.mmaBlocks.size());
  if (const int64_t floats = attentionSplitFloats(simtAttn); floats > 0) {
    ws_.attnSplits.ensure(static_cast<size_t>(floats) * sizeof(float));
    setAttentionSplitBuffer(simtAttn, ws_.attnSplits.as<float>());
  }
}

void CudaBackend::enqueueLayerDone(int32_t layer) {
  // This layer's pages are final once the stream passes here.
  layerNotifier_.record(layer, stream_);
}

void CudaBackend::sampleLogits(const ForwardPlan& plan, const DevicePlan& dev, const ResultLayout& layout) {
  const ModelConfig& c = config_;
  const int32_t V = c.vocabSize;
  const int32_t numTokens = plan.numTokens, numRows = plan.numRows, numStochastic = plan.numStochastic;
  const int64_t R = layout.R;
  const int32_t topWidth = layout.topWidth;
  const float eps = static_cast<float>(c.rmsNormEps);
  float* residual = ws_.residual.as<float>();
  addRmsNorm(residual, ws_.proj.as(), finalNorm_.as<float>(), ws_.normed.as(), dtype_, numTokens, c.hiddenSize, eps,
             stream_);
  if (numRows == 0) return;

  char* res = ws_.results.as<char>();
  SampleResults results;
  results.tokenIds = reinterpret_cast<int32_t*>(res);
  results.logprobs = reinterpret_cast<float*>(res + R * 4);
  results.targetLogprobs = reinterpret_cast<float*>(res + R * 8);
  float* rowLogSumExp = reinterpret_cast<float*>(res + R * 12);
  results.topIds = reinterpret_cast<int32_t*>(res + R * 16);
  results.topLogprobs = reinterpret_cast<float*>(res + R * 16 + R * topWidth * 4);
  gatherRows(ws_.normed.as(), dev.logitRowTokens, ws_.gathered.as(), dtype_, numRows, c.hiddenSize, stream_);
  const void* head = c.tieWordEmbeddings ? embedding_.as() : lmHead_.as();
  gemm_->run(ws_.gathered.as(), head, ws_.logits.as(), numRows, V, c.hiddenSize, dtype_, DType::F32);
  SamplingArgs sa;
  sa.logits = ws_.logits.as<float>();
  sa.work = ws_.work.as<float>();
  sa.rows = dev.rows;
  sa.edits = dev.edits;
  sa.allowed = dev.allowed;
  sa.masks = dev.masks;
  sa.numRows = numRows;
  sa.vocab = V;
  sa.maxTop = topWidth;
  sa.results = results;
  sa.rowLogSumExp = rowLogSumExp;
  sa.numStochastic = numStochastic;
  if (numStochastic > 0) {
    sa.stochasticRows = dev.stochasticRows;
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
}

void CudaBackend::readBack(const std::vector<SequenceInput>& batch, const ForwardPlan& plan,
                           const ResultLayout& layout, std::vector<SequenceOutput>& out) {
  const int32_t V = config_.vocabSize;
  const int32_t numRows = plan.numRows;
  const int64_t R = layout.R;
  const int32_t topWidth = layout.topWidth;
  if (numRows > 0)
    CUDA_CHECK(cudaMemcpyAsync(ws_.hostResults.data(), ws_.results.as(), layout.bytes, cudaMemcpyDeviceToHost,
                               stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));

  const char* hostRes = ws_.hostResults.data();
  const auto* hTokenIds = reinterpret_cast<const int32_t*>(hostRes);
  const auto* hLogprobs = reinterpret_cast<const float*>(hostRes + R * 4);
  const auto* hTarget = reinterpret_cast<const float*>(hostRes + R * 8);
  const auto* hTopIds = reinterpret_cast<const int32_t*>(hostRes + R * 16);
  const auto* hTopLogprobs = reinterpret_cast<const float*>(hostRes + R * 16 + R * topWidth * 4);
  for (size_t s = 0; s < batch.size(); s++)
    if (!batch[s].targetIds.empty()) out[s].targetLogprobs.assign(batch[s].tokenIds.size(), 0.0f);
  for (int32_t r = 0; r < numRows; r++) {
    const RowRef& ref = plan.rowRefs[r];
    const SequenceInput& seq = batch[ref.sequence];
    SequenceOutput& so = out[ref.sequence];
    if (!seq.targetIds.empty()) so.targetLogprobs[ref.index] = hTarget[r];
    if (!ref.sample) continue;
    SampleOutput sample;
    sample.index = ref.index;
    sample.tokenId = hTokenIds[r];
    sample.logprob = hLogprobs[r];
    for (int32_t k = 0; k < plan.rows[r].numTop; k++)
      sample.topLogprobs.emplace_back(hTopIds[r * topWidth + k], hTopLogprobs[r * topWidth + k]);
    if (seq.returnLogits) {
      sample.logits.resize(static_cast<size_t>(V));
      CUDA_CHECK(cudaMemcpy(sample.logits.data(), ws_.logits.as<float>() + int64_t{r} * V, sizeof(float) * V,
                            cudaMemcpyDeviceToHost));
    }
    if (seq.returnProbs) {
      sample.probs.assign(static_cast<size_t>(V), 0.0f);
      if (plan.rows[r].mode == kRowGreedy) {
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
