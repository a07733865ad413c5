// A Hugging Face config.json, normalised: classic (rope_theta / rope_scaling) and newer
// (rope_parameters) forms read into one struct.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tandem {

enum class RopeType : int32_t { Default = 0, Llama3 = 1 };

struct RopeConfig {
  RopeType type = RopeType::Default;
  double theta = 10000.0;
  // llama3 scaling (rope_type "llama3")
  double factor = 1.0;
  double lowFreqFactor = 1.0;
  double highFreqFactor = 4.0;
  int64_t originalMaxPositionEmbeddings = 8192;
};

struct ModelConfig {
  std::string architecture;  // "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"
  std::string modelType;     // "llama", "mistral", "qwen2", "qwen3"
  int32_t numLayers = 0;
  int32_t hiddenSize = 0;
  int32_t numHeads = 0;
  int32_t numKvHeads = 0;
  int32_t headDim = 0;  // explicit head_dim, else hiddenSize / numHeads
  int32_t intermediateSize = 0;
  int32_t vocabSize = 0;
  int64_t maxPositionEmbeddings = 0;
  double rmsNormEps = 1e-6;
  RopeConfig rope;
  bool attentionBias = false;  // q/k/v biases (Qwen2 always; Llama when attention_bias)
  bool qkNorm = false;         // per-head RMSNorm on q and k before RoPE (Qwen3)
  bool tieWordEmbeddings = false;
  int32_t bosTokenId = -1;  // -1: none
  std::vector<int32_t> eosTokenIds;
  std::string storedDtype;  // "float32", "bfloat16", "float16"
  // Not from config.json: an executor option. Round RoPE inv_freq to the stored dtype, as a
  // transformers model does after `.to(bfloat16)` (from_pretrained never rounds it).
  bool roundRopeFrequenciesToStoredDtype = false;
};

// Throws ConfigError with the offending key on anything unsupported or missing.
ModelConfig loadModelConfig(const std::string& modelDir);

}  // namespace tandem
