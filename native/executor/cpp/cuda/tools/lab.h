// Shared helpers of the CUDA lab driver: opening a model on the GPU, running one sequence,
// simple JSON-ish reporting.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tandem/backend.h"
#include "tandem/model_config.h"
#include "tandem/weights.h"

namespace tandem::lab {

struct Model {
  ModelConfig config;
  std::unique_ptr<WeightStore> weights;
  std::unique_ptr<Backend> backend;
  KvPoolInfo pool;
};

DType parseDtype(const std::string& s);  // f32 | bf16 | f16
const char* dtypeName(DType t);
// Loads config + weights onto cuda:0 and allocates numPages pages (0: by kvCacheFraction 0.85).
Model openModel(const std::string& dir, DType dtype, int32_t pageSize, int32_t numPages);

// A growing page allocator over the pool (no reuse): enough for the lab's runs.
class PageAllocator {
 public:
  explicit PageAllocator(int32_t numPages) : numPages_(numPages) {}
  // Extends `table` to cover `numTokens` positions.
  void cover(std::vector<int32_t>& table, int64_t numTokens, int32_t pageSize);
  void reset() { next_ = 0; }

 private:
  int32_t numPages_;
  int32_t next_ = 0;
};

double nowSeconds();

int runGolden(const std::vector<std::string>& args);
int runSamplingCheck(const std::vector<std::string>& args);
int runLogitsDump(const std::vector<std::string>& args);
int runBench(const std::vector<std::string>& args);
int runProfile(const std::vector<std::string>& args);
int runAttentionCheck(const std::vector<std::string>& args);

}  // namespace tandem::lab
