// Native failures, one class per kind. The binding turns each into a rejected promise carrying
// `code` (below), which the TypeScript side maps to a named error class (src/errors.ts).
#pragma once

#include <stdexcept>
#include <string>

namespace tandem {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// config.json missing, malformed, or naming something we do not support.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& message) : Error("model_config_invalid", message) {}
};

// safetensors missing, truncated, malformed, or a tensor missing / of the wrong shape.
class CheckpointError : public Error {
 public:
  explicit CheckpointError(const std::string& message) : Error("checkpoint_invalid", message) {}
};

// A forward batch that cannot be computed (page out of range, token id >= vocab, ...).
class InvalidInputError : public Error {
 public:
  explicit InvalidInputError(const std::string& message) : Error("invalid_batch", message) {}
};

// The device failed (CUDA error, no such device). Carries file:line and the device's message.
class DeviceError : public Error {
 public:
  explicit DeviceError(const std::string& message) : Error("device_failed", message) {}
};

// Not enough host or device memory for weights or the KV pool.
class OutOfMemoryError : public Error {
 public:
  explicit OutOfMemoryError(const std::string& message) : Error("out_of_memory", message) {}
};

}  // namespace tandem
