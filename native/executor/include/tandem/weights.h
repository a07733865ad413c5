// Memory-mapped safetensors (single file or sharded via model.safetensors.index.json).
// Tensors stay in their stored dtype in the mapping; backends convert while uploading.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tandem {

enum class StoredDType : int32_t { F32 = 0, BF16 = 1, F16 = 2 };

struct TensorView {
  std::string name;
  StoredDType dtype = StoredDType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // inside the mapping, valid while the WeightStore lives
  int64_t numBytes = 0;
};

class WeightStore {
 public:
  // Maps every shard; throws CheckpointError (truncated file, bad header, unsupported dtype).
  static std::unique_ptr<WeightStore> open(const std::string& modelDir);
  virtual ~WeightStore() = default;
  virtual bool has(const std::string& name) const = 0;
  // Throws CheckpointError naming the tensor when it is missing or its shape differs.
  virtual const TensorView& get(const std::string& name, const std::vector<int64_t>& expectedShape) const = 0;
};

// Converts n stored elements to float32.
void toFloat32(const TensorView& tensor, float* dst);

}  // namespace tandem
