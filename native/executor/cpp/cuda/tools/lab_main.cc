// tandem-cuda-lab <golden|sampling|logits|bench|profile|attention> ...   (see each runner for its arguments)
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <exception>

#include "lab.h"
#include "tandem/errors.h"

namespace tandem::lab {

DType parseDtype(const std::string& s) {
  if (s == "f32" || s == "float32") return DType::F32;
  if (s == "bf16" || s == "bfloat16") return DType::BF16;
  if (s == "f16" || s == "float16") return DType::F16;
  throw InvalidInputError("unknown dtype " + s + " (f32, bf16, f16)");
}

const char* dtypeName(DType t) { return t == DType::F32 ? "f32" : (t == DType::BF16 ? "bf16" : "f16"); }

Model openModel(const std::string& dir, DType dtype, int32_t pageSize, int32_t numPages) {
  Model m;
  m.config = loadModelConfig(dir);
  // The fixtures' float32 `cases` of a bf16 checkpoint were made with rounded RoPE frequencies;
  // the lab checks them that way unless TANDEM_ROPE_ROUNDING=none|stored says otherwise.
  const char* rounding = std::getenv("TANDEM_ROPE_ROUNDING");
  m.config.roundRopeFrequenciesToStoredDtype =
      rounding == nullptr ? dtype == DType::F32 : std::string(rounding) == "stored";
  m.weights = WeightStore::open(dir);
  m.backend = makeCudaBackend(0, dtype);
  m.backend->loadWeights(m.config, *m.weights);
  KvPoolRequest request;
  request.pageSize = pageSize;
  request.numPages = numPages;
  m.pool = m.backend->allocateKvPool(request);
  return m;
}

void PageAllocator::cover(std::vector<int32_t>& table, int64_t numTokens, int32_t pageSize) {
  while (static_cast<int64_t>(table.size()) * pageSize < numTokens) {
    if (next_ >= numPages_) throw OutOfMemoryError("lab page allocator: pool exhausted");
    table.push_back(next_++);
  }
}

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace tandem::lab

int main(int argc, char** argv) {
  using namespace tandem::lab;
  if (argc < 2) {
    std::fprintf(stderr, "usage: tandem-cuda-lab <golden|sampling|logits|bench|profile|attention> ...\n");
    return 2;
  }
  const std::string cmd = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (cmd == "golden") return runGolden(args);
    if (cmd == "sampling") return runSamplingCheck(args);
    if (cmd == "logits") return runLogitsDump(args);
    if (cmd == "bench") return runBench(args);
    if (cmd == "profile") return runProfile(args);
    if (cmd == "attention") return runAttentionCheck(args);
    std::fprintf(stderr, "unknown command %s\n", cmd.c_str());
    return 2;
  } catch (const tandem::Error& e) {
    std::fprintf(stderr, "%s: %s\n", e.code().c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
