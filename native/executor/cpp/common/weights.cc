// safetensors, memory-mapped read-only. One mapping per shard; TensorViews point into them.
#include "tandem/weights.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "file_util.h"
#include "json.h"
#include "tandem/errors.h"

namespace tandem {
namespace {

std::string shapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

class Mapping {
 public:
  Mapping(const std::string& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw CheckpointError(path + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      throw CheckpointError(path + ": cannot stat");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      data_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (data_ == MAP_FAILED) {
        data_ = nullptr;
        ::close(fd);
        throw CheckpointError(path + ": mmap failed (" + std::strerror(errno) + ")");
      }
    }
    ::close(fd);
  }
  ~Mapping() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  const uint8_t* bytes() const { return static_cast<const uint8_t*>(data_); }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  void* data_ = nullptr;
  size_t size_ = 0;
};

class SafetensorsStore : public WeightStore {
 public:
  explicit SafetensorsStore(const std::string& modelDir) {
    const std::string indexPath = joinPath(modelDir, "model.safetensors.index.json");
    const std::string singlePath = joinPath(modelDir, "model.safetensors");
    std::vector<std::string> shards;
    if (fileExists(indexPath)) {
      std::string text;
      readTextFile(indexPath, text);
      json::Value index;
      try {
        index = json::parse(text);
      } catch (const std::exception& e) {
        throw CheckpointError(indexPath + ": " + e.what());
      }
      const json::Value* map = index.find("weight_map");
      if (map == nullptr || !map->isObject()) throw CheckpointError(indexPath + ": missing \"weight_map\"");
      std::set<std::string> unique;
      for (const auto& [name, file] : map->object) {
        if (!file.isString()) throw CheckpointError(indexPath + ": weight_map entry for " + name + " is not a file name");
        if (unique.insert(file.string).second) shards.push_back(file.string);
      }
    } else if (fileExists(singlePath)) {
      shards.push_back("model.safetensors");
    } else {
      throw CheckpointError(modelDir + ": no model.safetensors or model.safetensors.index.json");
    }
    for (const auto& shard : shards) openShard(joinPath(modelDir, shard));
  }

  bool has(const std::string& name) const override { return tensors_.count(name) != 0; }

  const TensorView& get(const std::string& name, const std::vector<int64_t>& expectedShape) const override {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw CheckpointError("tensor \"" + name + "\" is missing from the checkpoint");
    if (it->second.shape != expectedShape)
      throw CheckpointError("tensor \"" + name + "\" has shape " + shapeString(it->second.shape) + ", expected " +
                            shapeString(expectedShape));
    return it->second;
  }

 private:
  std::vector<std::unique_ptr<Mapping>> mappings_;
  std::map<std::string, TensorView> tensors_;

  void openShard(const std::string& path) {
    if (!fileExists(path)) throw CheckpointError(path + ": shard file not found");
    auto mapping = std::make_unique<Mapping>(path);
    const size_t fileSize = mapping->size();
    if (fileSize < 8) throw CheckpointError(path + ": truncated (no safetensors header)");
    uint64_t headerBytes = 0;
    std::memcpy(&headerBytes, mapping->bytes(), 8);
    if (headerBytes > fileSize - 8)
      throw CheckpointError(path + ": truncated (header of " + std::to_string(headerBytes) + " bytes, file has " +
                            std::to_string(fileSize) + ")");
    json::Value header;
    try {
      header = json::parse(std::string(reinterpret_cast<const char*>(mapping->bytes() + 8), headerBytes));
    } catch (const std::exception& e) {
      throw CheckpointError(path + ": bad safetensors header: " + e.what());
    }
    if (!header.isObject()) throw CheckpointError(path + ": safetensors header is not an object");
    const uint8_t* dataStart = mapping->bytes() + 8 + headerBytes;
    const size_t dataBytes = fileSize - 8 - headerBytes;
    for (const auto& [name, entry] : header.object) {
      if (name == "__metadata__") continue;
      const json::Value* dtype = entry.find("dtype");
      const json::Value* shape = entry.find("shape");
      const json::Value* offsets = entry.find("data_offsets");
      if (dtype == nullptr || shape == nullptr || offsets == nullptr || !shape->isArray() || !offsets->isArray() ||
          offsets->array.size() != 2)
        throw CheckpointError(path + ": malformed header entry for \"" + name + "\"");
      TensorView t;
      t.name = name;
      int64_t elemBytes = 0;
      if (dtype->string == "F32") {
        t.dtype = StoredDType::F32;
        elemBytes = 4;
      } else if (dtype->string == "BF16") {
        t.dtype = StoredDType::BF16;
        elemBytes = 2;
      } else if (dtype->string == "F16") {
        t.dtype = StoredDType::F16;
        elemBytes = 2;
      } else {
        throw CheckpointError(path + ": tensor \"" + name + "\" has unsupported dtype " + dtype->string +
                              " (supported: F32, BF16, F16)");
      }
      int64_t numElements = 1;
      for (const auto& d : shape->array) {
        t.shape.push_back(static_cast<int64_t>(d.number));
        numElements *= static_cast<int64_t>(d.number);
      }
      const auto begin = static_cast<uint64_t>(offsets->array[0].number);
      const auto end = static_cast<uint64_t>(offsets->array[1].number);
      if (end < begin || end - begin != static_cast<uint64_t>(numElements * elemBytes))
        throw CheckpointError(path + ": tensor \"" + name + "\" byte range does not match its shape");
      if (end > dataBytes)
        throw CheckpointError(path + ": truncated (tensor \"" + name + "\" ends at byte " + std::to_string(end) +
                              " of the data section, which has " + std::to_string(dataBytes) + ")");
      t.data = dataStart + begin;
      t.numBytes = static_cast<int64_t>(end - begin);
      if (tensors_.count(name)) throw CheckpointError(path + ": tensor \"" + name + "\" appears in two shards");
      tensors_[name] = std::move(t);
    }
    mappings_.push_back(std::move(mapping));
  }
};

float bf16ToFloat(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float f16ToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        exp--;
      }
      mant &= 0x3FF;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

std::unique_ptr<WeightStore> WeightStore::open(const std::string& modelDir) {
  return std::make_unique<SafetensorsStore>(modelDir);
}

void toFloat32(const TensorView& tensor, float* dst) {
  const size_t elemBytes = tensor.dtype == StoredDType::F32 ? 4 : 2;
  const size_t n = static_cast<size_t>(tensor.numBytes) / elemBytes;
  if (tensor.dtype == StoredDType::F32) {
    const auto* src = static_cast<const float*>(tensor.data);
    const size_t chunk = 1u << 18;
#pragma omp parallel for schedule(static) if (n > (1u << 20))
    for (size_t begin = 0; begin < n; begin += chunk) std::memcpy(dst + begin, src + begin, std::min(chunk, n - begin) * 4);
    return;
  }
  const auto* src = static_cast<const uint8_t*>(tensor.data);
  // Large tensors convert on every core (loading a 0.5B bf16 checkpoint is mostly this loop).
#pragma omp parallel for schedule(static) if (n > (1u << 20))
  for (size_t i = 0; i < n; i++) {
    uint16_t v;
    std::memcpy(&v, src + 2 * i, 2);
    dst[i] = tensor.dtype == StoredDType::BF16 ? bf16ToFloat(v) : f16ToFloat(v);
  }
}

}  // namespace tandem
