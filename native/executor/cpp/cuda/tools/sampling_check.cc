// tandem-cuda-lab sampling <modelDir> [f32|bf16|f16]
// Device sampling against the host sampler (cpp/common/sampler.cc) on the very logits the device
// returned: for each parameter set, every position of a 96-token sequence is sampled on the GPU
// with a fixed seed, then re-sampled on the host; ids, logprobs, top logprobs and the final
// distribution must agree (ids: all but rounding-boundary draws, at most 1%).
#include <cmath>
#include <cstdio>

#include "common/sampler.h"
#include "lab.h"
#include "tandem/errors.h"

namespace tandem::lab {
namespace {

struct Named {
  const char* name;
  SamplingParams params;
};

std::vector<Named> parameterSets(int32_t vocab) {
  std::vector<Named> sets;
  auto base = [] {
    SamplingParams p;
    p.hasSeed = true;
    p.seed = 1234;
    p.numTopLogprobs = 5;
    return p;
  };
  SamplingParams p = base();
  sets.push_back({"temperature1", p});
  p = base(), p.temperature = 0.7f, p.topK = 5;
  sets.push_back({"topk5", p});
  p = base(), p.topP = 0.8f;
  sets.push_back({"topp0.8", p});
  p = base(), p.minP = 0.1f;
  sets.push_back({"minp0.1", p});
  p = base(), p.temperature = 1.3f, p.topK = 20, p.topP = 0.9f, p.minP = 0.05f;
  sets.push_back({"combined", p});
  p = base(), p.temperature = 0.8f, p.repetitionPenalty = 1.3f, p.frequencyPenalty = 0.5f, p.presencePenalty = 0.3f;
  p.logitBias = {{3, 2.5f}, {7, -1.0f}, {vocab - 1, 4.0f}};
  sets.push_back({"penalties+bias", p});
  p = base();
  for (int32_t id = 5; id < 5 + 10 * 7; id += 7) p.allowedTokenIds.push_back(id);
  sets.push_back({"allowed", p});
  // Constrained decoding's bitmask: every 3rd id and the last one; then with the id list (both hold).
  std::vector<uint32_t> mask((static_cast<size_t>(vocab) + 31) / 32, 0u);
  for (int32_t id = 2; id < vocab; id += 3) mask[id >> 5] |= 1u << (id & 31);
  mask[(vocab - 1) >> 5] |= 1u << ((vocab - 1) & 31);
  p = base(), p.temperature = 0.9f, p.allowedTokenMask = mask;
  sets.push_back({"mask", p});
  p = base(), p.temperature = 0.0f, p.allowedTokenMask = mask;
  sets.push_back({"greedy+mask", p});
  p = base(), p.allowedTokenMask = mask;
  for (int32_t id = 5; id < 5 + 10 * 7; id += 7) p.allowedTokenIds.push_back(id);
  sets.push_back({"allowed+mask", p});
  p = base(), p.temperature = 0.0f, p.repetitionPenalty = 1.5f, p.logitBias = {{11, 3.0f}};
  sets.push_back({"greedy+penalty", p});
  p = base(), p.temperature = 1.0f, p.seed = 99;
  sets.push_back({"seed99", p});
  return sets;
}

}  // namespace

int runSamplingCheck(const std::vector<std::string>& args) {
  if (args.empty()) throw InvalidInputError("sampling <modelDir> [dtype]");
  const DType dtype = args.size() > 1 ? parseDtype(args[1]) : DType::F32;
  Model m = openModel(args[0], dtype, 16, 64);
  const int32_t V = m.config.vocabSize, T = 96;
  std::vector<int32_t> tokens;
  uint32_t state = 7;
  for (int32_t i = 0; i < T; i++) {
    state = state * 1664525u + 1013904223u;
    tokens.push_back(static_cast<int32_t>(state % static_cast<uint32_t>(V)));
  }
  std::vector<int32_t> table;
  PageAllocator pages(m.pool.numPages);
  pages.cover(table, T, 16);
  bool pass = true;
  for (const Named& set : parameterSets(V)) {
    SequenceInput s;
    s.tokenIds = tokens;
    s.pageTable = table;
    for (int32_t i = 0; i < T; i++) s.sampleIndices.push_back(i);
    s.sampling = set.params;
    s.promptTokenIds.assign(tokens.begin(), tokens.begin() + 20);
    s.outputTokenIds.assign(tokens.begin() + 20, tokens.begin() + 40);
    s.outputTokenIds.push_back(tokens[25]);
    s.returnLogits = true;
    s.returnProbs = true;
    std::vector<SequenceOutput> out;
    m.backend->forward({s}, out);
    int idMismatch = 0, topMismatch = 0;
    double maxLogprobDiff = 0, maxProbDiff = 0;
    for (const SampleOutput& got : out[0].samples) {
      SampleOutput want;
      sampleToken(got.logits.data(), V, s, int64_t{s.startPos} + got.index + 1, 0, want);
      if (want.tokenId != got.tokenId) idMismatch++;
      maxLogprobDiff = std::max(maxLogprobDiff, static_cast<double>(std::fabs(want.logprob - got.logprob)));
      if (want.tokenId == got.tokenId)
        for (int32_t v = 0; v < V; v++)
          maxProbDiff = std::max(maxProbDiff, static_cast<double>(std::fabs(want.probs[v] - got.probs[v])));
      if (want.topLogprobs.size() != got.topLogprobs.size()) {
        topMismatch++;
        continue;
      }
      for (size_t k = 0; k < want.topLogprobs.size(); k++)
        if (want.topLogprobs[k].first != got.topLogprobs[k].first ||
            std::fabs(want.topLogprobs[k].second - got.topLogprobs[k].second) > 1e-4)
          topMismatch++;
    }
    const bool ok = idMismatch <= T / 100 && topMismatch == 0 && maxLogprobDiff <= 1e-4 && maxProbDiff <= 1e-5;
    pass = pass && ok;
    std::printf("{\"check\":\"sampling\",\"set\":\"%s\",\"draws\":%d,\"idMismatch\":%d,\"topMismatch\":%d,"
                "\"maxLogprobDiff\":%.3g,\"maxProbDiff\":%.3g,\"pass\":%s}\n",
                set.name, T, idMismatch, topMismatch, maxLogprobDiff, maxProbDiff, ok ? "true" : "false");
  }
  return pass ? 0 : 1;
}

}  // namespace tandem::lab
