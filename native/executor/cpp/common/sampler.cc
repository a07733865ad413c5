// Order of operations (documented in README.md; tests compute the same reference):
//   logit bias -> allowed-token ids and bitmask -> repetition penalty (prompt + output, HF rule) ->
//   frequency / presence penalties (output) -> greedy argmax when temperature == 0, else
//   divide by temperature -> softmax -> top-k -> renormalise -> top-p -> min-p -> renormalise
//   -> one draw u = uniformDraw(seed, position) over the tokens in id order.
// logprob / topLogprobs always describe the raw model distribution (log-softmax of logits).
#include "common/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>
#include <vector>

namespace tandem {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// max and log(sum(exp(l - max))) in double.
void logSumExp(const float* logits, int32_t n, float& maxOut, double& logSumOut) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int32_t i = 0; i < n; i++) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (int32_t i = 0; i < n; i++) sum += std::exp(static_cast<double>(logits[i]) - mx);
  maxOut = mx;
  logSumOut = std::log(sum);
}

}  // namespace

double uniformDraw(uint64_t seed, int64_t position) {
  const uint64_t h = splitmix64(splitmix64(seed) ^ splitmix64(static_cast<uint64_t>(position) + 0x632BE59BD9B4E019ull));
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

float logprobOf(const float* logits, int32_t vocabSize, int32_t tokenId) {
  float mx;
  double lse;
  logSumExp(logits, vocabSize, mx, lse);
  return static_cast<float>(static_cast<double>(logits[tokenId]) - mx - lse);
}

void sampleToken(const float* logits, int32_t vocabSize, const SequenceInput& seq, int64_t position,
                 uint64_t fallbackSeed, SampleOutput& out) {
  const SamplingParams& sp = seq.sampling;
  const float negInf = -std::numeric_limits<float>::infinity();

  // Raw distribution: logprobs of the chosen token and the top N.
  float rawMax;
  double rawLse;
  logSumExp(logits, vocabSize, rawMax, rawLse);
  auto rawLogprob = [&](int32_t id) {
    return static_cast<float>(static_cast<double>(logits[id]) - rawMax - rawLse);
  };

  std::vector<float> work(logits, logits + vocabSize);
  for (const auto& [id, bias] : sp.logitBias)
    if (id >= 0 && id < vocabSize) work[id] += bias;
  if (!sp.allowedTokenIds.empty()) {
    std::vector<char> allowed(static_cast<size_t>(vocabSize), 0);
    for (int32_t id : sp.allowedTokenIds)
      if (id >= 0 && id < vocabSize) allowed[id] = 1;
    for (int32_t i = 0; i < vocabSize; i++)
      if (!allowed[i]) work[i] = negInf;
  }
  if (!sp.allowedTokenMask.empty()) {
    const uint32_t* mask = sp.allowedTokenMask.data();
    for (int32_t i = 0; i < vocabSize; i++)
      if (((mask[i >> 5] >> (i & 31)) & 1u) == 0) work[i] = negInf;
  }
  if (sp.repetitionPenalty != 1.0f) {
    std::vector<char> seen(static_cast<size_t>(vocabSize), 0);
    for (int32_t id : seq.promptTokenIds)
      if (id >= 0 && id < vocabSize) seen[id] = 1;
    for (int32_t id : seq.outputTokenIds)
      if (id >= 0 && id < vocabSize) seen[id] = 1;
    for (int32_t i = 0; i < vocabSize; i++)
      if (seen[i]) work[i] = work[i] < 0 ? work[i] * sp.repetitionPenalty : work[i] / sp.repetitionPenalty;
  }
  if (sp.frequencyPenalty != 0.0f || sp.presencePenalty != 0.0f) {
    std::unordered_map<int32_t, int32_t> counts;
    for (int32_t id : seq.outputTokenIds)
      if (id >= 0 && id < vocabSize) counts[id]++;
    for (const auto& [id, count] : counts)
      work[id] -= sp.frequencyPenalty * static_cast<float>(count) + sp.presencePenalty;
  }

  int32_t chosen = 0;
  std::vector<float> probs;
  if (sp.temperature <= 0.0f) {
    for (int32_t i = 1; i < vocabSize; i++)
      if (work[i] > work[chosen]) chosen = i;
    if (seq.returnProbs) {
      probs.assign(static_cast<size_t>(vocabSize), 0.0f);
      probs[chosen] = 1.0f;
    }
  } else {
    // softmax(work / T) in double for the filters, stored as float.
    float mx = negInf;
    for (int32_t i = 0; i < vocabSize; i++) mx = std::max(mx, work[i] / sp.temperature);
    std::vector<double> p(static_cast<size_t>(vocabSize));
    double sum = 0.0;
    for (int32_t i = 0; i < vocabSize; i++) {
      p[i] = work[i] == negInf ? 0.0 : std::exp(static_cast<double>(work[i] / sp.temperature) - mx);
      sum += p[i];
    }
    if (!(sum > 0.0) || !std::isfinite(sum)) {
      // Every token masked out (or a non-finite logit): fall back to the argmax of what is left.
      int32_t best = 0;
      for (int32_t i = 1; i < vocabSize; i++)
        if (work[i] > work[best]) best = i;
      std::fill(p.begin(), p.end(), 0.0);
      p[best] = 1.0;
      sum = 1.0;
    }
    for (auto& v : p) v /= sum;
    std::vector<int32_t> order;
    auto sortedOrder = [&]() {
      order.resize(static_cast<size_t>(vocabSize));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
    };
    auto renormalise = [&]() {
      double s = 0.0;
      for (double v : p) s += v;
      if (s > 0)
        for (auto& v : p) v /= s;
    };
    if (sp.topK > 0 && sp.topK < vocabSize) {
      sortedOrder();
      const double kth = p[order[sp.topK - 1]];
      for (int32_t i = 0; i < vocabSize; i++)
        if (p[i] < kth) p[i] = 0.0;
      renormalise();
    }
    if (sp.topP < 1.0f) {
      sortedOrder();
      double cum = 0.0;
      size_t keep = 0;
      while (keep < order.size()) {
        cum += p[order[keep]];
        keep++;
        if (cum >= static_cast<double>(sp.topP)) break;
      }
      for (size_t r = keep; r < order.size(); r++) p[order[r]] = 0.0;
      renormalise();
    }
    if (sp.minP > 0.0f) {
      double pMax = 0.0;
      for (double v : p) pMax = std::max(pMax, v);
      const double threshold = static_cast<double>(sp.minP) * pMax;
      for (auto& v : p)
        if (v < threshold) v = 0.0;
      renormalise();
    }
    const uint64_t seed = sp.hasSeed ? sp.seed : fallbackSeed;
    const double u = uniformDraw(seed, position);
    double cum = 0.0;
    chosen = -1;
    int32_t lastNonZero = 0;
    for (int32_t i = 0; i < vocabSize; i++) {
      if (p[i] <= 0.0) continue;
      lastNonZero = i;
      cum += p[i];
      if (u < cum) {
        chosen = i;
        break;
      }
    }
    if (chosen < 0) chosen = lastNonZero;  // rounding: u beyond the summed mass
    if (seq.returnProbs) {
      probs.resize(static_cast<size_t>(vocabSize));
      for (int32_t i = 0; i < vocabSize; i++) probs[i] = static_cast<float>(p[i]);
    }
  }

  out.tokenId = chosen;
  out.logprob = rawLogprob(chosen);
  out.topLogprobs.clear();
  if (sp.numTopLogprobs > 0) {
    const int32_t n = std::min(sp.numTopLogprobs, vocabSize);
    std::vector<int32_t> ids(static_cast<size_t>(vocabSize));
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (int32_t r = 0; r < n; r++) out.topLogprobs.emplace_back(ids[r], rawLogprob(ids[r]));
  }
  if (seq.returnLogits) out.logits.assign(logits, logits + vocabSize);
  if (seq.returnProbs) out.probs = std::move(probs);
}

}  // namespace tandem
