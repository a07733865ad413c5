// What both ends of a transfer must agree on, and the memory a side exposes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace kvt {

// The KV pool's shape: [numLayers][2][numPages][pageSize][numKvHeads][headDim] in dtype.
struct KvSpec {
  std::string model;  // checkpoint identity (name); at most 127 bytes
  std::string dtype;  // 'float32' | 'bfloat16' | 'float16'
  uint32_t numLayers = 0;
  uint32_t numKvHeads = 0;
  uint32_t headDim = 0;
  uint32_t pageSize = 0;  // tokens per page
  uint32_t numPages = 0;  // may differ between the sides
  uint64_t pageBytes() const;
  // Bytes the pool spans: numLayers * 2 * numPages * pageBytes.
  uint64_t poolBytes() const;
};

size_t dtypeBytes(const std::string& dtype);  // 0 when unknown

// Empty when `remote` may exchange pages with `local`; else names the first differing field.
std::string describeMismatch(const KvSpec& local, const KvSpec& remote);

// A registered span of memory: host memory (device == kHostDevice) or a CUDA device pool, whose
// base is a device pointer into one cudaMalloc allocation on CUDA device `device`.
constexpr int kHostDevice = -1;
struct Region {
  uint8_t* base = nullptr;
  uint64_t length = 0;
  int device = kHostDevice;
  bool onDevice() const { return device != kHostDevice; }
};

}  // namespace kvt
