#include "spec.h"

namespace kvt {

size_t dtypeBytes(const std::string& dtype) {
  if (dtype == "float32") return 4;
  if (dtype == "bfloat16" || dtype == "float16") return 2;
  return 0;
}

uint64_t KvSpec::pageBytes() const {
  return uint64_t(pageSize) * numKvHeads * headDim * dtypeBytes(dtype);
}

uint64_t KvSpec::poolBytes() const { return uint64_t(numLayers) * 2 * numPages * pageBytes(); }

static std::string differs(const char* field, const std::string& local, const std::string& remote) {
  return std::string(field) + ": receiver has " + local + ", sender has " + remote;
}

std::string describeMismatch(const KvSpec& local, const KvSpec& remote) {
  if (local.model != remote.model) return differs("model", "'" + local.model + "'", "'" + remote.model + "'");
  if (local.numLayers != remote.numLayers)
    return differs("numLayers", std::to_string(local.numLayers), std::to_string(remote.numLayers));
  if (local.numKvHeads != remote.numKvHeads)
    return differs("numKvHeads", std::to_string(local.numKvHeads), std::to_string(remote.numKvHeads));
  if (local.headDim != remote.headDim)
    return differs("headDim", std::to_string(local.headDim), std::to_string(remote.headDim));
  if (local.dtype != remote.dtype) return differs("dtype", local.dtype, remote.dtype);
  if (local.pageSize != remote.pageSize)
    return differs("pageSize", std::to_string(local.pageSize), std::to_string(remote.pageSize));
  return "";
}

}  // namespace kvt
