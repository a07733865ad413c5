// tandem-cuda-lab golden <fixtureDir> <f32|bf16|f16> [pageSize]
// Checks the CUDA backend against a fixture's golden.json (Hugging Face, float32 math):
//   A. greedy generation, prompt prefilled in chunks of 13 then decode steps -> greedy_ids
//   B. teacher forcing over prompt + greedy_ids -> sequence_logprobs, last_prompt_logits, top-1
//   C. every case in one batch, prompts split at other points, decode steps batched -> same ids
// f32 passes when ids are exact and logprobs / logits within 1e-3; bf16 / f16 when top-1 agrees
// on >= 99% of positions whose reference margin exceeds 0.05 and |delta logprob| stays within
// the documented tolerance (docs/cuda.md).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "common/file_util.h"
#include "common/json.h"
#include "lab.h"
#include "tandem/errors.h"

namespace tandem::lab {
namespace {

std::vector<int32_t> intArray(const json::Value& v) {
  std::vector<int32_t> out;
  for (const json::Value& x : v.array) out.push_back(static_cast<int32_t>(x.number));
  return out;
}

std::vector<double> numberArray(const json::Value& v) {
  std::vector<double> out;
  for (const json::Value& x : v.array) out.push_back(x.number);
  return out;
}

struct Case {
  bool hasLogprobs = true;  // text_cases (demo model) carry greedy ids only
  std::vector<int32_t> prompt, greedy;
  std::vector<double> margins, lastLogits, sequenceLogprobs;
};

std::vector<Case> readGolden(const std::string& dir) {
  std::string text;
  const std::string path = joinPath(dir, "golden.json");
  if (!readTextFile(path, text)) throw ConfigError(path + ": unreadable");
  const json::Value root = json::parse(text);
  std::vector<Case> cases;
  if (root.find("cases") == nullptr) {
    for (const json::Value& c : root.find("text_cases")->array) {
      Case k;
      k.hasLogprobs = false;
      k.prompt = intArray(*c.find("prompt_ids"));
      k.greedy = intArray(*c.find("greedy_ids"));
      cases.push_back(std::move(k));
    }
    return cases;
  }
  for (const json::Value& c : root.find("cases")->array) {
    Case k;
    k.prompt = intArray(*c.find("prompt_ids"));
    k.greedy = intArray(*c.find("greedy_ids"));
    k.margins = numberArray(*c.find("greedy_margins"));
    k.lastLogits = numberArray(*c.find("last_prompt_logits"));
    k.sequenceLogprobs = numberArray(*c.find("sequence_logprobs"));
    cases.push_back(std::move(k));
  }
  return cases;
}

SequenceInput greedyStep(const std::vector<int32_t>& ids, int32_t startPos, const std::vector<int32_t>& table,
                         bool sample) {
  SequenceInput s;
  s.tokenIds = ids;
  s.startPos = startPos;
  s.pageTable = table;
  if (sample) s.sampleIndices = {static_cast<int32_t>(ids.size()) - 1};
  s.sampling.temperature = 0.0f;
  return s;
}

// A: chunked prefill then decode, one sequence at a time.
std::vector<int32_t> generateSequential(Model& m, PageAllocator& pages, const std::vector<int32_t>& prompt,
                                        int32_t steps, int32_t chunk) {
  std::vector<int32_t> table, generated;
  const int32_t P = static_cast<int32_t>(prompt.size());
  pages.cover(table, P + steps, m.pool.pageSize);
  std::vector<SequenceOutput> out;
  for (int32_t start = 0; start < P; start += chunk) {
    const int32_t end = std::min(P, start + chunk);
    std::vector<int32_t> ids(prompt.begin() + start, prompt.begin() + end);
    m.backend->forward({greedyStep(ids, start, table, end == P)}, out);
  }
  generated.push_back(out[0].samples.at(0).tokenId);
  for (int32_t step = 1; step < steps; step++) {
    m.backend->forward({greedyStep({generated.back()}, P + step - 1, table, true)}, out);
    generated.push_back(out[0].samples.at(0).tokenId);
  }
  return generated;
}

// C: all prompts together; the first forward takes a third of each prompt, the second the rest.
std::vector<std::vector<int32_t>> generateBatched(Model& m, PageAllocator& pages, const std::vector<Case>& cases,
                                                  int32_t steps) {
  const size_t n = cases.size();
  std::vector<std::vector<int32_t>> tables(n), generated(n);
  std::vector<SequenceOutput> out;
  std::vector<SequenceInput> first, second;
  for (size_t i = 0; i < n; i++) {
    const auto& prompt = cases[i].prompt;
    const int32_t P = static_cast<int32_t>(prompt.size());
    pages.cover(tables[i], P + steps, m.pool.pageSize);
    const int32_t split = P / 3;
    if (split > 0)
      first.push_back(greedyStep(std::vector<int32_t>(prompt.begin(), prompt.begin() + split), 0, tables[i], false));
    second.push_back(greedyStep(std::vector<int32_t>(prompt.begin() + split, prompt.end()), split, tables[i], true));
  }
  if (!first.empty()) m.backend->forward(first, out);
  m.backend->forward(second, out);
  for (size_t i = 0; i < n; i++) generated[i].push_back(out[i].samples.at(0).tokenId);
  for (int32_t step = 1; step < steps; step++) {
    std::vector<SequenceInput> decode;
    for (size_t i = 0; i < n; i++)
      decode.push_back(greedyStep({generated[i].back()},
                                  static_cast<int32_t>(cases[i].prompt.size()) + step - 1, tables[i], true));
    m.backend->forward(decode, out);
    for (size_t i = 0; i < n; i++) generated[i].push_back(out[i].samples.at(0).tokenId);
  }
  return generated;
}

}  // namespace

int runGolden(const std::vector<std::string>& args) {
  if (args.size() < 2) throw InvalidInputError("golden <fixtureDir> <f32|bf16|f16> [pageSize]");
  const std::string dir = args[0];
  const DType dtype = parseDtype(args[1]);
  const int32_t pageSize = args.size() > 2 ? std::stoi(args[2]) : 16;
  const double tolMean = dtype == DType::F32 ? 1e-3 : (dtype == DType::BF16 ? 0.03 : 0.01);
  const double tolMax = dtype == DType::F32 ? 1e-3 : (dtype == DType::BF16 ? 0.3 : 0.1);
  Model m = openModel(dir, dtype, pageSize, 8192 / pageSize * 16);
  PageAllocator pages(m.pool.numPages);
  const std::vector<Case> cases = readGolden(dir);

  int exactCases = 0, batchedEqual = 0, top1Agree = 0, top1Total = 0;
  double maxLogprobDiff = 0, sumLogprobDiff = 0, maxLastLogitDiff = 0;
  int64_t numLogprobs = 0;
  std::vector<std::vector<int32_t>> sequential;
  for (const Case& k : cases) {
    const int32_t steps = static_cast<int32_t>(k.greedy.size());
    const std::vector<int32_t> ids = generateSequential(m, pages, k.prompt, steps, 13);
    sequential.push_back(ids);
    int32_t firstMismatch = -1;
    for (int32_t j = 0; j < steps && firstMismatch < 0; j++)
      if (ids[j] != k.greedy[j]) firstMismatch = j;
    if (firstMismatch < 0) exactCases++;
    if (!k.hasLogprobs) {
      std::printf("case prompt=%zu greedy_exact=%s first_mismatch=%d\n", k.prompt.size(),
                  firstMismatch < 0 ? "yes" : "no", firstMismatch);
      continue;
    }

    // B: teacher forcing over the reference sequence; argmax at every position.
    std::vector<int32_t> full = k.prompt;
    full.insert(full.end(), k.greedy.begin(), k.greedy.end());
    const int32_t T = static_cast<int32_t>(full.size()), P = static_cast<int32_t>(k.prompt.size());
    std::vector<int32_t> table;
    pages.cover(table, T, m.pool.pageSize);
    SequenceInput s = greedyStep(full, 0, table, false);
    for (int32_t i = 0; i < T; i++) s.sampleIndices.push_back(i);
    s.targetIds.assign(full.begin() + 1, full.end());
    s.targetIds.push_back(0);
    s.returnLogits = true;
    std::vector<SequenceOutput> out;
    m.backend->forward({s}, out);
    double caseMax = 0;
    for (int32_t i = 0; i + 1 < T; i++) {
      const double d = std::fabs(out[0].targetLogprobs[i] - k.sequenceLogprobs[i]);
      caseMax = std::max(caseMax, d);
      sumLogprobDiff += d;
      numLogprobs++;
    }
    maxLogprobDiff = std::max(maxLogprobDiff, caseMax);
    const std::vector<float>& last = out[0].samples.at(P - 1).logits;
    double lastMax = 0;
    for (size_t v = 0; v < last.size(); v++) lastMax = std::max(lastMax, std::fabs(last[v] - k.lastLogits[v]));
    maxLastLogitDiff = std::max(maxLastLogitDiff, lastMax);
    for (int32_t j = 0; j < steps; j++) {
      if (k.margins[j] <= 0.05) continue;
      top1Total++;
      if (out[0].samples.at(P - 1 + j).tokenId == k.greedy[j]) top1Agree++;
    }
    std::printf("case prompt=%d greedy_exact=%s first_mismatch=%d margin_there=%.4f max_dlogprob=%.3g "
                "max_dlast_logit=%.3g\n",
                P, firstMismatch < 0 ? "yes" : "no", firstMismatch,
                firstMismatch < 0 ? 0.0 : k.margins[firstMismatch], caseMax, lastMax);
  }
  pages.reset();
  const auto batched = generateBatched(m, pages, cases, static_cast<int32_t>(cases[0].greedy.size()));
  int batchedExact = 0;
  for (size_t i = 0; i < cases.size(); i++) {
    if (batched[i] == sequential[i]) batchedEqual++;
    if (batched[i] == cases[i].greedy) batchedExact++;
  }
  const double meanLogprobDiff = numLogprobs > 0 ? sumLogprobDiff / static_cast<double>(numLogprobs) : 0;
  const double top1 = top1Total > 0 ? static_cast<double>(top1Agree) / top1Total : 1.0;
  const int numCases = static_cast<int>(cases.size());
  bool pass;
  if (!cases[0].hasLogprobs)
    pass = dtype != DType::F32 || (exactCases == numCases && batchedExact == numCases);
  else if (dtype == DType::F32)
    pass = exactCases == numCases && batchedExact == numCases && maxLogprobDiff <= tolMax && maxLastLogitDiff <= tolMax;
  else
    pass = top1 >= 0.99 && meanLogprobDiff <= tolMean && maxLogprobDiff <= tolMax;
  std::printf("{\"check\":\"golden\",\"fixture\":\"%s\",\"dtype\":\"%s\",\"pageSize\":%d,\"cases\":%d,"
              "\"greedyExact\":%d,\"batchedExact\":%d,\"batchedEqualsSequential\":%d,\"maxAbsLogprobDiff\":%.3g,"
              "\"meanAbsLogprobDiff\":%.3g,\"maxAbsLastLogitDiff\":%.3g,\"top1Agree\":%d,\"top1Total\":%d,"
              "\"tolMean\":%g,\"tolMax\":%g,\"pass\":%s}\n",
              dir.c_str(), dtypeName(dtype), pageSize, numCases, exactCases, batchedExact, batchedEqual,
              maxLogprobDiff, meanLogprobDiff, maxLastLogitDiff, top1Agree, top1Total, tolMean, tolMax,
              pass ? "true" : "false");
  return pass ? 0 : 1;
}

}  // namespace tandem::lab
