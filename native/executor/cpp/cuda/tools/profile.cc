// tandem-cuda-lab profile <modelDir> <decode|prefill> <batch|tokens> [dtype]
// One forward pass between cudaProfilerStart/Stop, for `ncu --profile-from-start off`:
// decode: batch sequences of 512 cached tokens take one decode step; prefill: one sequence of
// `tokens` new tokens. Prints the host-timed duration of that forward too.
#include <cuda_profiler_api.h>

#include <cstdio>

#include "cuda/cuda_check.h"
#include "lab.h"
#include "tandem/errors.h"

namespace tandem::lab {

int runProfile(const std::vector<std::string>& args) {
  if (args.size() < 3) throw InvalidInputError("profile <modelDir> <decode|prefill> <n> [dtype]");
  const bool decode = args[1] == "decode";
  const int32_t n = std::stoi(args[2]);
  const DType dtype = args.size() > 3 ? parseDtype(args[3]) : DType::BF16;
  const int32_t context = 512, pageSize = 16;
  const int32_t tokensPerSeq = decode ? context + 8 : n;
  const int32_t numSeqs = decode ? n : 1;
  Model m = openModel(args[0], dtype, pageSize, numSeqs * ((tokensPerSeq + pageSize - 1) / pageSize) + 8);
  PageAllocator pages(m.pool.numPages);
  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(numSeqs));
  std::vector<SequenceOutput> out;
  auto make = [&](int32_t s, int32_t start, int32_t len) {
    SequenceInput in;
    for (int32_t i = 0; i < len; i++) in.tokenIds.push_back((s * 7919 + start + i * 31) % m.config.vocabSize);
    in.startPos = start;
    in.pageTable = tables[s];
    in.sampleIndices = {len - 1};
    in.sampling.temperature = 0.0f;
    return in;
  };
  for (int32_t s = 0; s < numSeqs; s++) pages.cover(tables[s], tokensPerSeq, pageSize);
  std::vector<SequenceInput> measured;
  if (decode) {
    for (int32_t s = 0; s < numSeqs; s += 8) {
      std::vector<SequenceInput> prefill;
      for (int32_t b = s; b < std::min(numSeqs, s + 8); b++) prefill.push_back(make(b, 0, context));
      m.backend->forward(prefill, out);
    }
    for (int32_t step = 0; step < 3; step++) {  // warm-up steps (GEMM plans, workspace)
      std::vector<SequenceInput> d;
      for (int32_t s = 0; s < numSeqs; s++) d.push_back(make(s, context + step, 1));
      m.backend->forward(d, out);
    }
    for (int32_t s = 0; s < numSeqs; s++) measured.push_back(make(s, context + 3, 1));
  } else {
    m.backend->forward({make(0, 0, n)}, out);  // warm-up
    measured.push_back(make(0, 0, n));
  }
  CUDA_CHECK(cudaDeviceSynchronize());
  CUDA_CHECK(cudaProfilerStart());
  const double started = nowSeconds();
  m.backend->forward(measured, out);
  const double seconds = nowSeconds() - started;
  CUDA_CHECK(cudaProfilerStop());
  std::printf("{\"profile\":\"%s\",\"n\":%d,\"forwardMs\":%.3f}\n", args[1].c_str(), n, seconds * 1e3);
  return 0;
}

}  // namespace tandem::lab
