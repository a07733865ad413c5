// The model-independent executor: config + weights + one backend + its KV pool, and the batch
// checks every backend relies on. The binding wraps exactly this class.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tandem/backend.h"
#include "tandem/model_config.h"
#include "tandem/weights.h"

namespace tandem {

struct ExecutorOpenOptions {
  std::string modelDir;
  std::string device = "cpu";  // "cpu" or "cuda:N"
  std::string dtype;           // "" picks the device default
  KvPoolRequest kv;
  int32_t numThreads = 0;  // 0: all cores
  bool roundRopeFrequenciesToStoredDtype = false;
};

class Executor {
 public:
  // Throws ConfigError / CheckpointError / DeviceError / OutOfMemoryError.
  static std::unique_ptr<Executor> open(const ExecutorOpenOptions& options);

  const ModelConfig& config() const { return config_; }
  const KvPoolInfo& kvPool() const { return kvPool_; }
  DType computeDtype() const { return backend_->computeDtype(); }
  std::string deviceName() const { return backend_->deviceName(); }

  // Validates the whole batch (InvalidInputError names the sequence and the problem) before any
  // computation, then runs one batched forward pass. Calls are serialised.
  // onLayerDone (may be empty) is called per layer as its K/V land in the pool (backend.h).
  void forward(const std::vector<SequenceInput>& batch, std::vector<SequenceOutput>& out,
               const LayerDoneHook& onLayerDone = {});
  // The last forward pass's device time and the device's idle gap before it (backend.h).
  StepTiming lastStepTiming() const { return backend_->lastStepTiming(); }

 private:
  ModelConfig config_;
  std::unique_ptr<Backend> backend_;
  KvPoolInfo kvPool_;
  std::mutex mutex_;
};

void validateBatch(const std::vector<SequenceInput>& batch, const ModelConfig& config, const KvPoolInfo& pool);

}  // namespace tandem
