// The parts of the GPU seam that need no device: copy-mode names and defaults.
#include <cstdlib>
#include <stdexcept>

#include "device.h"

namespace kvt::device {

const char* copyModeName(CopyMode mode) {
  switch (mode) {
    case CopyMode::Kernel: return "kernel";
    case CopyMode::Batch: return "batch";
    case CopyMode::PerRange: return "per_range";
  }
  return "kernel";
}

CopyMode parseCopyMode(const std::string& name) {
  if (name == "kernel") return CopyMode::Kernel;
  if (name == "batch") return CopyMode::Batch;
  if (name == "per_range") return CopyMode::PerRange;
  throw std::invalid_argument("copy mode must be kernel, batch or per_range, not '" + name + "'");
}

static CopyMode fromEnv(const char* variable, CopyMode fallback) {
  const char* value = std::getenv(variable);
  return value == nullptr || *value == '\0' ? fallback : parseCopyMode(value);
}

CopyMode defaultDeviceCopyMode() { return fromEnv("TANDEM_KVT_COPY_D2D", CopyMode::Kernel); }
CopyMode defaultStagingCopyMode() { return fromEnv("TANDEM_KVT_COPY_STAGING", CopyMode::Batch); }

}  // namespace kvt::device
