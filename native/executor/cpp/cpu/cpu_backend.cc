// The CPU backend: float32 weights in host memory, a host KV pool, one batched forward pass over
// all tokens of all sequences (prefill chunks and decode steps alike), host sampling.
#include <immintrin.h>
#include <omp.h>
#include <sys/mman.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>

#include "common/sampler.h"
#include "cpu/kernels.h"
#include "tandem/backend.h"
#include "tandem/errors.h"

namespace tandem {
namespace {

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using FloatBuffer = std::unique_ptr<float[], FreeDeleter>;

FloatBuffer allocFloats(int64_t n) {
  const size_t bytes = (static_cast<size_t>(std::max<int64_t>(n, 1)) * 4 + 63) / 64 * 64;
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (p == nullptr) throw OutOfMemoryError("cannot allocate " + std::to_string(bytes) + " bytes of host memory");
  return FloatBuffer(p);
}

struct LayerWeights {
  const float* qkvW = nullptr;     // [(numHeads + 2 * numKvHeads) * headDim, hidden]
  const float* qkvB = nullptr;     // [(numHeads + 2 * numKvHeads) * headDim] or null
  const float* oW = nullptr;       // [hidden, numHeads * headDim]
  const float* qNorm = nullptr;    // [headDim] or null (Qwen3)
  const float* kNorm = nullptr;    // [headDim] or null
  const float* inNorm = nullptr;   // [hidden]
  const float* postNorm = nullptr; // [hidden]
  const float* gateUpW = nullptr;  // [2 * intermediate, hidden]: gate rows then up rows
  const float* downW = nullptr;    // [hidden, intermediate]
};

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(int32_t numThreads) : numThreads_(numThreads) {}
  ~CpuBackend() override {
    if (kvBase_ != nullptr) ::munmap(kvBase_, static_cast<size_t>(kv_.totalBytes));
  }

  std::string deviceName() const override { return "cpu"; }
  DType computeDtype() const override { return DType::F32; }

  void loadWeights(const ModelConfig& config, const WeightStore& weights) override {
    cfg_ = config;
    const int64_t H = cfg_.hiddenSize, hd = cfg_.headDim, nH = cfg_.numHeads, nKv = cfg_.numKvHeads;
    const int64_t I = cfg_.intermediateSize, V = cfg_.vocabSize;
    const int64_t qRows = nH * hd, kvRows = nKv * hd;
    storedDtype_ = weights.get("model.embed_tokens.weight", {V, H}).dtype;
    embed_ = load(weights, "model.embed_tokens.weight", {V, H});
    finalNorm_ = load(weights, "model.norm.weight", {H});
    if (cfg_.tieWordEmbeddings) lmHead_ = embed_;
    else lmHead_ = load(weights, "lm_head.weight", {V, H});
    layers_.resize(static_cast<size_t>(cfg_.numLayers));
    for (int32_t l = 0; l < cfg_.numLayers; l++) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      LayerWeights& w = layers_[l];
      w.qkvW = loadConcat(weights, {{p + "self_attn.q_proj.weight", {qRows, H}},
                                    {p + "self_attn.k_proj.weight", {kvRows, H}},
                                    {p + "self_attn.v_proj.weight", {kvRows, H}}});
      if (cfg_.attentionBias)
        w.qkvB = loadConcat(weights, {{p + "self_attn.q_proj.bias", {qRows}},
                                      {p + "self_attn.k_proj.bias", {kvRows}},
                                      {p + "self_attn.v_proj.bias", {kvRows}}});
      w.oW = load(weights, p + "self_attn.o_proj.weight", {H, qRows});
      if (cfg_.qkNorm) {
        w.qNorm = load(weights, p + "self_attn.q_norm.weight", {hd});
        w.kNorm = load(weights, p + "self_attn.k_norm.weight", {hd});
      }
      w.inNorm = load(weights, p + "input_layernorm.weight", {H});
      w.postNorm = load(weights, p + "post_attention_layernorm.weight", {H});
      w.gateUpW = loadConcat(weights, {{p + "mlp.gate_proj.weight", {I, H}}, {p + "mlp.up_proj.weight", {I, H}}});
      w.downW = load(weights, p + "mlp.down_proj.weight", {H, I});
    }
    computeInvFreq();
  }

  KvPoolInfo allocateKvPool(const KvPoolRequest& request) override {
    if (request.pageSize <= 0) throw ConfigError("pageSize must be positive");
    kv_.dtype = DType::F32;
    kv_.pageSize = request.pageSize;
    kv_.pageBytes = static_cast<int64_t>(request.pageSize) * cfg_.numKvHeads * cfg_.headDim * 4;
    const int64_t bytesPerPage = kv_.pageBytes * 2 * cfg_.numLayers;  // all layers, K and V
    int64_t numPages = request.numPages;
    if (numPages <= 0) {
      const int64_t budget = request.kvCacheBytes > 0 ? request.kvCacheBytes : (256ll << 20);
      numPages = budget / bytesPerPage;
      if (numPages < 1)
        throw OutOfMemoryError("kvCacheBytes " + std::to_string(budget) + " is smaller than one page (" +
                               std::to_string(bytesPerPage) + " bytes)");
    }
    kv_.numPages = static_cast<int32_t>(numPages);
    kv_.totalBytes = numPages * bytesPerPage;
    // Anonymous mapping: zeroed lazily by the kernel, so a large pool costs nothing until used.
    void* p = ::mmap(nullptr, static_cast<size_t>(kv_.totalBytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED) throw OutOfMemoryError("cannot map a KV pool of " + std::to_string(kv_.totalBytes) + " bytes");
    kvBase_ = static_cast<float*>(p);
    kv_.baseAddress = reinterpret_cast<uintptr_t>(p);
    return kv_;
  }

  using Backend::forward;
  void forward(const std::vector<SequenceInput>& batch, std::vector<SequenceOutput>& out,
               const LayerDoneHook& onLayerDone) override;
  StepTiming lastStepTiming() const override { return timing_; }

 private:
  // The CPU is the device: a pass's wall time, and the time since the previous pass ended.
  struct StepClock {
    using Clock = std::chrono::steady_clock;
    StepClock(StepTiming& timing, std::optional<Clock::time_point>& lastEnd)
        : timing_(timing), lastEnd_(lastEnd), start_(Clock::now()) {}
    ~StepClock() {
      const auto end = Clock::now();
      timing_.deviceMs = std::chrono::duration<double, std::milli>(end - start_).count();
      timing_.gapMs = lastEnd_ ? std::chrono::duration<double, std::milli>(start_ - *lastEnd_).count() : -1;
      lastEnd_ = end;
    }
    StepTiming& timing_;
    std::optional<Clock::time_point>& lastEnd_;
    Clock::time_point start_;
  };
  StepTiming timing_;
  std::optional<std::chrono::steady_clock::time_point> lastEnd_;

  ModelConfig cfg_;
  int32_t numThreads_;
  std::vector<FloatBuffer> owned_;
  const float* embed_ = nullptr;      // [vocab, hidden]
  const float* lmHead_ = nullptr;     // [vocab, hidden]
  const float* finalNorm_ = nullptr;  // [hidden]
  std::vector<LayerWeights> layers_;
  std::vector<float> invFreq_;  // [headDim / 2]
  StoredDType storedDtype_ = StoredDType::F32;
  KvPoolInfo kv_;
  float* kvBase_ = nullptr;  // [numLayers][2][numPages][pageSize][numKvHeads][headDim] f32, host
  std::random_device randomDevice_;

  const float* load(const WeightStore& weights, const std::string& name, const std::vector<int64_t>& shape) {
    return loadConcat(weights, {{name, shape}});
  }

  // Converts tensors to float32 and stores them one after another in one owned buffer.
  const float* loadConcat(const WeightStore& weights,
                          const std::vector<std::pair<std::string, std::vector<int64_t>>>& parts) {
    int64_t total = 0;
    std::vector<const TensorView*> views;
    for (const auto& [name, shape] : parts) {
      views.push_back(&weights.get(name, shape));
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      total += n;
    }
    FloatBuffer buf = allocFloats(total);
    float* dst = buf.get();
    for (const TensorView* v : views) {
      toFloat32(*v, dst);
      dst += v->numBytes / (v->dtype == StoredDType::F32 ? 4 : 2);
    }
    owned_.push_back(std::move(buf));
    return owned_.back().get();
  }

  // inv_freq exactly as transformers computes it in float32 (default and llama3 rope types).
  void computeInvFreq() {
    const int32_t half = cfg_.headDim / 2;
    invFreq_.resize(static_cast<size_t>(half));
    const float base = static_cast<float>(cfg_.rope.theta);
    for (int32_t i = 0; i < half; i++) {
      const float exponent = static_cast<float>(2 * i) / static_cast<float>(cfg_.headDim);
      invFreq_[i] = 1.0f / std::pow(base, exponent);
    }
    if (cfg_.rope.type == RopeType::Llama3) {
      const float factor = static_cast<float>(cfg_.rope.factor);
      const float lowFactor = static_cast<float>(cfg_.rope.lowFreqFactor);
      const float highFactor = static_cast<float>(cfg_.rope.highFreqFactor);
      const float oldContext = static_cast<float>(cfg_.rope.originalMaxPositionEmbeddings);
      const float lowFreqWavelen = static_cast<float>(static_cast<double>(cfg_.rope.originalMaxPositionEmbeddings) / cfg_.rope.lowFreqFactor);
      const float highFreqWavelen = static_cast<float>(static_cast<double>(cfg_.rope.originalMaxPositionEmbeddings) / cfg_.rope.highFreqFactor);
      const float twoPi = static_cast<float>(2.0 * M_PI);
      for (int32_t i = 0; i < half; i++) {
        const float inv = invFreq_[i];
        const float wavelen = twoPi / inv;
        float scaled = wavelen > lowFreqWavelen ? inv / factor : inv;
        const float smooth = (oldContext / wavelen - lowFactor) / (highFactor - lowFactor);
        const float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
        const bool medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
        invFreq_[i] = medium ? smoothed : scaled;
      }
    }
    // transformers' from_pretrained keeps inv_freq in float32 whatever the stored dtype; only a
    // model cast with .to(bfloat16) after construction rounds it. The option reproduces the latter.
    if (cfg_.roundRopeFrequenciesToStoredDtype)
      for (auto& f : invFreq_) f = roundToStored(f, storedDtype_);
  }

  static float roundToStored(float f, StoredDType dtype) {
    if (dtype == StoredDType::BF16) {
      uint32_t b;
      std::memcpy(&b, &f, 4);
      b = (b + 0x7FFFu + ((b >> 16) & 1u)) & 0xFFFF0000u;  // round to nearest even
      std::memcpy(&f, &b, 4);
    } else if (dtype == StoredDType::F16) {
#if defined(__F16C__)
      f = _cvtsh_ss(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
#endif
    }
    return f;
  }

  // x[headDim] <- rope(x) at `position`: x*cos + rotate_half(x)*sin, rotate_half = cat(-x2, x1).
  void applyRope(float* x, const float* cosv, const float* sinv) const {
    const int32_t half = cfg_.headDim / 2;
    for (int32_t i = 0; i < half; i++) {
      const float a = x[i], b = x[i + half];
      x[i] = a * cosv[i] - b * sinv[i];
      x[i + half] = b * cosv[i] + a * sinv[i];
    }
  }

  float* kvSlot(int32_t layer, int32_t kOrV, int32_t page, int32_t slot) const {
    const int64_t pageFloats = kv_.pageBytes / 4;
    return kvBase_ + ((static_cast<int64_t>(layer) * 2 + kOrV) * kv_.numPages + page) * pageFloats +
           static_cast<int64_t>(slot) * cfg_.numKvHeads * cfg_.headDim;
  }
};

void CpuBackend::forward(const std::vector<SequenceInput>& batch, std::vector<SequenceOutput>& out,
                         const LayerDoneHook& onLayerDone) {
  const StepClock clock(timing_, lastEnd_);
  const int64_t H = cfg_.hiddenSize, hd = cfg_.headDim, nH = cfg_.numHeads, nKv = cfg_.numKvHeads;
  const int64_t I = cfg_.intermediateSize, V = cfg_.vocabSize;
  const int64_t qkvCols = (nH + 2 * nKv) * hd;
  const int32_t half = cfg_.headDim / 2;
  const int nt = numThreads_;
  const float eps = static_cast<float>(cfg_.rmsNormEps);

  // Flatten: token t belongs to sequence tokSeq[t] at absolute position tokPos[t].
  int64_t T = 0;
  int64_t maxEnd = 0;
  for (const auto& s : batch) {
    T += static_cast<int64_t>(s.tokenIds.size());
    maxEnd = std::max<int64_t>(maxEnd, s.startPos + static_cast<int64_t>(s.tokenIds.size()));
  }
  std::vector<int32_t> tokSeq(T), tokPos(T), tokId(T);
  {
    int64_t t = 0;
    for (size_t s = 0; s < batch.size(); s++)
      for (size_t i = 0; i < batch[s].tokenIds.size(); i++, t++) {
        tokSeq[t] = static_cast<int32_t>(s);
        tokPos[t] = batch[s].startPos + static_cast<int32_t>(i);
        tokId[t] = batch[s].tokenIds[i];
      }
  }

  FloatBuffer x = allocFloats(T * H);       // [T, hidden] residual stream
  FloatBuffer h = allocFloats(T * H);       // [T, hidden] normed
  FloatBuffer qkv = allocFloats(T * qkvCols);  // [T, q | k | v]
  FloatBuffer attn = allocFloats(T * nH * hd);  // [T, numHeads * headDim]
  FloatBuffer proj = allocFloats(T * H);    // [T, hidden] o_proj / down_proj output
  FloatBuffer gu = allocFloats(T * 2 * I);  // [T, gate | up]
  FloatBuffer act = allocFloats(T * I);     // [T, intermediate]
  FloatBuffer cosT = allocFloats(T * half), sinT = allocFloats(T * half);  // [T, headDim / 2]

#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t t = 0; t < T; t++) {
    std::memcpy(x.get() + t * H, embed_ + static_cast<int64_t>(tokId[t]) * H, H * 4);
    for (int32_t i = 0; i < half; i++) {
      const float freq = static_cast<float>(tokPos[t]) * invFreq_[i];
      cosT[t * half + i] = std::cos(freq);
      sinT[t * half + i] = std::sin(freq);
    }
  }

  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  const int64_t groupSize = nH / nKv;
  std::vector<std::vector<float>> scoreBuffers(static_cast<size_t>(nt), std::vector<float>(static_cast<size_t>(maxEnd)));

  for (int32_t l = 0; l < cfg_.numLayers; l++) {
    const LayerWeights& w = layers_[l];
#pragma omp parallel for num_threads(nt) schedule(static) if (T > 1)
    for (int64_t t = 0; t < T; t++) cpu::rmsNorm(x.get() + t * H, w.inNorm, H, eps, h.get() + t * H);
    cpu::matmulNT(h.get(), T, H, w.qkvW, qkvCols, w.qkvB, qkv.get(), nt);

    // q/k norm (Qwen3), RoPE, then K and V into their pages.
#pragma omp parallel for num_threads(nt) schedule(static) if (T > 1)
    for (int64_t t = 0; t < T; t++) {
      float* row = qkv.get() + t * qkvCols;
      const float* c = cosT.get() + t * half;
      const float* s = sinT.get() + t * half;
      for (int64_t head = 0; head < nH + nKv; head++) {
        float* v = row + head * hd;
        const float* normW = head < nH ? w.qNorm : w.kNorm;
        if (normW != nullptr) cpu::rmsNorm(v, normW, hd, eps, v);
        applyRope(v, c, s);
      }
      const SequenceInput& seq = batch[tokSeq[t]];
      const int32_t pos = tokPos[t];
      const int32_t page = seq.pageTable[pos / kv_.pageSize];
      const int32_t slot = pos % kv_.pageSize;
      std::memcpy(kvSlot(l, 0, page, slot), row + nH * hd, nKv * hd * 4);
      std::memcpy(kvSlot(l, 1, page, slot), row + (nH + nKv) * hd, nKv * hd * 4);
    }
    if (onLayerDone) onLayerDone(l);  // this layer's pages are final: they may leave now

    // Causal attention over the pages: token t sees positions [0, tokPos[t]] of its sequence.
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
    for (int64_t job = 0; job < T * nH; job++) {
      const int64_t t = job / nH, head = job % nH, g = head / groupSize;
      float* scores = scoreBuffers[omp_get_thread_num()].data();
      const SequenceInput& seq = batch[tokSeq[t]];
      const float* q = qkv.get() + t * qkvCols + head * hd;
      const int32_t n = tokPos[t] + 1;
      float mx = -INFINITY;
      for (int32_t p = 0; p < n; p++) {
        const float* k = kvSlot(l, 0, seq.pageTable[p / kv_.pageSize], p % kv_.pageSize) + g * hd;
        scores[p] = cpu::dot(q, k, hd) * scale;
        mx = std::max(mx, scores[p]);
      }
      float sum = 0.0f;
      for (int32_t p = 0; p < n; p++) {
        scores[p] = std::exp(scores[p] - mx);
        sum += scores[p];
      }
      float* o = attn.get() + t * nH * hd + head * hd;
      std::fill(o, o + hd, 0.0f);
      const float inv = 1.0f / sum;
      for (int32_t p = 0; p < n; p++) {
        const float* v = kvSlot(l, 1, seq.pageTable[p / kv_.pageSize], p % kv_.pageSize) + g * hd;
        cpu::axpy(scores[p] * inv, v, o, hd);
      }
    }

    cpu::matmulNT(attn.get(), T, nH * hd, w.oW, H, nullptr, proj.get(), nt);
#pragma omp parallel for num_threads(nt) schedule(static) if (T > 1)
    for (int64_t t = 0; t < T; t++) {
      float* xr = x.get() + t * H;
      const float* pr = proj.get() + t * H;
      for (int64_t i = 0; i < H; i++) xr[i] += pr[i];
      cpu::rmsNorm(xr, w.postNorm, H, eps, h.get() + t * H);
    }
    cpu::matmulNT(h.get(), T, H, w.gateUpW, 2 * I, nullptr, gu.get(), nt);
#pragma omp parallel for num_threads(nt) schedule(static) if (T > 1)
    for (int64_t t = 0; t < T; t++) {
      const float* g = gu.get() + t * 2 * I;
      const float* u = g + I;
      float* a = act.get() + t * I;
      for (int64_t i = 0; i < I; i++) a[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    }
    cpu::matmulNT(act.get(), T, I, w.downW, H, nullptr, proj.get(), nt);
#pragma omp parallel for num_threads(nt) schedule(static) if (T > 1)
    for (int64_t t = 0; t < T; t++) {
      float* xr = x.get() + t * H;
      const float* pr = proj.get() + t * H;
      for (int64_t i = 0; i < H; i++) xr[i] += pr[i];
    }
  }

  // Logits only for the rows someone asked about: sample indices and teacher-forced targets.
  std::vector<int64_t> rows;                    // token index t of each logits row
  std::vector<int64_t> seqFirstToken(batch.size());
  {
    int64_t t = 0;
    for (size_t s = 0; s < batch.size(); s++) {
      seqFirstToken[s] = t;
      const int64_t n = static_cast<int64_t>(batch[s].tokenIds.size());
      if (!batch[s].targetIds.empty()) {
        for (int64_t i = 0; i < n; i++) rows.push_back(t + i);
      } else {
        for (int32_t idx : batch[s].sampleIndices) rows.push_back(t + idx);
      }
      t += n;
    }
  }
  const int64_t R = static_cast<int64_t>(rows.size());
  std::vector<int64_t> rowOfToken(T, -1);
  FloatBuffer normed = allocFloats(R * H);
  for (int64_t r = 0; r < R; r++) {
    rowOfToken[rows[r]] = r;
    cpu::rmsNorm(x.get() + rows[r] * H, finalNorm_, H, eps, normed.get() + r * H);
  }
  FloatBuffer logits = allocFloats(R * V);  // [R, vocab]
  if (R > 0) cpu::matmulNT(normed.get(), R, H, lmHead_, V, nullptr, logits.get(), nt);

  std::vector<uint64_t> fallbackSeeds(batch.size());
  for (auto& seed : fallbackSeeds) seed = (static_cast<uint64_t>(randomDevice_()) << 32) ^ randomDevice_();

  // Sampling and target log-probs, one job per (sequence, row) in parallel.
  struct Job {
    int32_t seq;
    int32_t sampleSlot;  // index into out[seq].samples, or -1 for a target-only row
    int64_t token;       // index into tokenIds
  };
  std::vector<Job> jobs;
  for (size_t s = 0; s < batch.size(); s++) {
    const auto& seq = batch[s];
    out[s].samples.resize(seq.sampleIndices.size());
    for (size_t k = 0; k < seq.sampleIndices.size(); k++)
      jobs.push_back({static_cast<int32_t>(s), static_cast<int32_t>(k), seq.sampleIndices[k]});
    if (!seq.targetIds.empty()) {
      out[s].targetLogprobs.resize(seq.tokenIds.size());
      for (size_t i = 0; i < seq.tokenIds.size(); i++) jobs.push_back({static_cast<int32_t>(s), -1, static_cast<int64_t>(i)});
    }
  }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (size_t j = 0; j < jobs.size(); j++) {
    const Job& job = jobs[j];
    const SequenceInput& seq = batch[job.seq];
    const float* row = logits.get() + rowOfToken[seqFirstToken[job.seq] + job.token] * V;
    if (job.sampleSlot >= 0) {
      SampleOutput& so = out[job.seq].samples[job.sampleSlot];
      so.index = static_cast<int32_t>(job.token);
      sampleToken(row, static_cast<int32_t>(V), seq, seq.startPos + job.token + 1, fallbackSeeds[job.seq], so);
    } else {
      out[job.seq].targetLogprobs[job.token] = logprobOf(row, static_cast<int32_t>(V), seq.targetIds[job.token]);
    }
  }
}

}  // namespace

std::unique_ptr<Backend> makeCpuBackend(DType computeDtype, int32_t numThreads) {
  if (computeDtype != DType::F32) throw ConfigError("the CPU backend computes in float32 only");
  return std::make_unique<CpuBackend>(numThreads > 0 ? numThreads : omp_get_num_procs());
}

}  // namespace tandem
