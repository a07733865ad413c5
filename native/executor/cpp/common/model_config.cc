// config.json -> ModelConfig. Accepts the classic (rope_theta / rope_scaling) and the newer
// (rope_parameters) RoPE forms; rejects what we cannot compute exactly, naming the key.
#include "tandem/model_config.h"

#include <algorithm>
#include <cmath>

#include "file_util.h"
#include "json.h"
#include "tandem/errors.h"

namespace tandem {
namespace {

const json::Value* findKey(const json::Value& obj, const char* key) {
  const json::Value* v = obj.find(key);
  return (v == nullptr || v->isNull()) ? nullptr : v;
}

int64_t requireInt(const json::Value& obj, const char* key, const std::string& file) {
  const json::Value* v = findKey(obj, key);
  if (v == nullptr) throw ConfigError(file + ": missing \"" + key + "\"");
  if (!v->isNumber() || v->number != std::floor(v->number) || v->number < 0)
    throw ConfigError(file + ": \"" + key + "\" must be a non-negative integer");
  return static_cast<int64_t>(v->number);
}

int64_t optionalInt(const json::Value& obj, const char* key, int64_t fallback, const std::string& file) {
  return findKey(obj, key) == nullptr ? fallback : requireInt(obj, key, file);
}

double optionalNumber(const json::Value& obj, const char* key, double fallback, const std::string& file) {
  const json::Value* v = findKey(obj, key);
  if (v == nullptr) return fallback;
  if (!v->isNumber()) throw ConfigError(file + ": \"" + key + "\" must be a number");
  return v->number;
}

bool optionalBool(const json::Value& obj, const char* key, bool fallback, const std::string& file) {
  const json::Value* v = findKey(obj, key);
  if (v == nullptr) return fallback;
  if (!v->isBool()) throw ConfigError(file + ": \"" + key + "\" must be true or false");
  return v->boolean;
}

// Reads rope settings from one object holding rope_type / type, factor, ... (rope_scaling or
// rope_parameters).
void readRopeScaling(const json::Value& scaling, RopeConfig& rope, const std::string& file, const char* where) {
  std::string type = "default";
  if (const json::Value* t = findKey(scaling, "rope_type")) type = t->string;
  else if (const json::Value* t2 = findKey(scaling, "type")) type = t2->string;
  if (type == "default") {
    rope.type = RopeType::Default;
  } else if (type == "llama3") {
    rope.type = RopeType::Llama3;
    rope.factor = optionalNumber(scaling, "factor", 8.0, file);
    rope.lowFreqFactor = optionalNumber(scaling, "low_freq_factor", 1.0, file);
    rope.highFreqFactor = optionalNumber(scaling, "high_freq_factor", 4.0, file);
    rope.originalMaxPositionEmbeddings = optionalInt(scaling, "original_max_position_embeddings", 8192, file);
    if (rope.highFreqFactor == rope.lowFreqFactor)
      throw ConfigError(file + ": " + where + " high_freq_factor must differ from low_freq_factor");
  } else {
    throw ConfigError(file + ": unsupported " + where + " rope_type \"" + type + "\" (supported: default, llama3)");
  }
}

}  // namespace

ModelConfig loadModelConfig(const std::string& modelDir) {
  const std::string file = joinPath(modelDir, "config.json");
  std::string text;
  if (!fileExists(file) || !readTextFile(file, text)) throw ConfigError(file + ": not found or unreadable");
  json::Value root;
  try {
    root = json::parse(text);
  } catch (const std::exception& e) {
    throw ConfigError(file + ": " + e.what());
  }
  if (!root.isObject()) throw ConfigError(file + ": not a JSON object");

  ModelConfig c;
  const json::Value* archs = findKey(root, "architectures");
  if (archs == nullptr || !archs->isArray() || archs->array.empty() || !archs->array[0].isString())
    throw ConfigError(file + ": missing \"architectures\"");
  c.architecture = archs->array[0].string;
  const json::Value* mt = findKey(root, "model_type");
  c.modelType = mt != nullptr && mt->isString() ? mt->string : "";

  if (c.architecture == "LlamaForCausalLM" || c.architecture == "MistralForCausalLM") {
    c.attentionBias = optionalBool(root, "attention_bias", false, file);
    if (optionalBool(root, "mlp_bias", false, file)) throw ConfigError(file + ": \"mlp_bias\": true is not supported");
  } else if (c.architecture == "Qwen2ForCausalLM") {
    c.attentionBias = true;
  } else if (c.architecture == "Qwen3ForCausalLM") {
    c.attentionBias = optionalBool(root, "attention_bias", false, file);
    c.qkNorm = true;
  } else {
    throw ConfigError(file + ": unsupported architecture \"" + c.architecture +
                      "\" (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)");
  }
  if (const json::Value* act = findKey(root, "hidden_act"); act != nullptr && act->string != "silu")
    throw ConfigError(file + ": unsupported hidden_act \"" + act->string + "\" (supported: silu)");

  c.numLayers = static_cast<int32_t>(requireInt(root, "num_hidden_layers", file));
  c.hiddenSize = static_cast<int32_t>(requireInt(root, "hidden_size", file));
  c.numHeads = static_cast<int32_t>(requireInt(root, "num_attention_heads", file));
  c.numKvHeads = static_cast<int32_t>(optionalInt(root, "num_key_value_heads", c.numHeads, file));
  c.intermediateSize = static_cast<int32_t>(requireInt(root, "intermediate_size", file));
  c.vocabSize = static_cast<int32_t>(requireInt(root, "vocab_size", file));
  if (c.numLayers <= 0 || c.hiddenSize <= 0 || c.numHeads <= 0 || c.numKvHeads <= 0 || c.intermediateSize <= 0 ||
      c.vocabSize <= 0)
    throw ConfigError(file + ": layer, size, head and vocab counts must be positive");
  if (c.numHeads % c.numKvHeads != 0)
    throw ConfigError(file + ": num_attention_heads (" + std::to_string(c.numHeads) +
                      ") is not a multiple of num_key_value_heads (" + std::to_string(c.numKvHeads) + ")");
  int64_t headDim = optionalInt(root, "head_dim", 0, file);
  if (headDim == 0) {
    if (c.hiddenSize % c.numHeads != 0) throw ConfigError(file + ": hidden_size is not a multiple of num_attention_heads");
    headDim = c.hiddenSize / c.numHeads;
  }
  if (headDim % 2 != 0) throw ConfigError(file + ": head_dim must be even for RoPE");
  c.headDim = static_cast<int32_t>(headDim);
  c.maxPositionEmbeddings = optionalInt(root, "max_position_embeddings", 4096, file);
  c.rmsNormEps = optionalNumber(root, "rms_norm_eps", 1e-6, file);
  c.tieWordEmbeddings = optionalBool(root, "tie_word_embeddings", false, file);

  if (const json::Value* sw = findKey(root, "use_sliding_window"); sw != nullptr && sw->isBool() && sw->boolean)
    throw ConfigError(file + ": \"use_sliding_window\": true is not supported");
  if (c.architecture == "MistralForCausalLM") {
    // Mistral v0.1 attends within a sliding window. Inside the window that is full causal
    // attention, so we serve positions up to the window exactly and reject the rest.
    if (const json::Value* sw = findKey(root, "sliding_window");
        sw != nullptr && sw->isNumber() && sw->number >= 1 && sw->number < static_cast<double>(c.maxPositionEmbeddings))
      c.maxPositionEmbeddings = static_cast<int64_t>(sw->number);
  }

  // RoPE: rope_parameters (newer) wins over rope_theta / rope_scaling (classic).
  if (const json::Value* rp = findKey(root, "rope_parameters")) {
    if (!rp->isObject()) throw ConfigError(file + ": \"rope_parameters\" must be an object");
    c.rope.theta = optionalNumber(*rp, "rope_theta", optionalNumber(root, "rope_theta", 10000.0, file), file);
    readRopeScaling(*rp, c.rope, file, "rope_parameters");
  } else {
    c.rope.theta = optionalNumber(root, "rope_theta", 10000.0, file);
    if (const json::Value* rs = findKey(root, "rope_scaling")) {
      if (!rs->isObject()) throw ConfigError(file + ": \"rope_scaling\" must be an object");
      readRopeScaling(*rs, c.rope, file, "rope_scaling");
    }
  }
  if (const json::Value* prf = findKey(root, "partial_rotary_factor"); prf != nullptr && prf->number != 1.0)
    throw ConfigError(file + ": \"partial_rotary_factor\" other than 1 is not supported");

  if (const json::Value* bos = findKey(root, "bos_token_id"); bos != nullptr && bos->isNumber())
    c.bosTokenId = static_cast<int32_t>(bos->number);
  if (const json::Value* eos = findKey(root, "eos_token_id")) {
    if (eos->isNumber()) c.eosTokenIds.push_back(static_cast<int32_t>(eos->number));
    else if (eos->isArray())
      for (const auto& e : eos->array)
        if (e.isNumber()) c.eosTokenIds.push_back(static_cast<int32_t>(e.number));
  }
  // generation_config.json often lists more end-of-sequence ids (Llama 3 instruct: eot_id).
  const std::string genFile = joinPath(modelDir, "generation_config.json");
  std::string genText;
  if (fileExists(genFile) && readTextFile(genFile, genText)) {
    try {
      json::Value gen = json::parse(genText);
      if (const json::Value* eos = findKey(gen, "eos_token_id")) {
        std::vector<int32_t> ids;
        if (eos->isNumber()) ids.push_back(static_cast<int32_t>(eos->number));
        else if (eos->isArray())
          for (const auto& e : eos->array)
            if (e.isNumber()) ids.push_back(static_cast<int32_t>(e.number));
        for (int32_t id : ids)
          if (std::find(c.eosTokenIds.begin(), c.eosTokenIds.end(), id) == c.eosTokenIds.end()) c.eosTokenIds.push_back(id);
      }
    } catch (const std::exception& e) {
      throw ConfigError(genFile + ": " + e.what());
    }
  }
  std::string dtype = "float32";
  if (const json::Value* d = findKey(root, "torch_dtype"); d != nullptr && d->isString()) dtype = d->string;
  if (const json::Value* d = findKey(root, "dtype"); d != nullptr && d->isString()) dtype = d->string;
  c.storedDtype = dtype;
  return c;
}

}  // namespace tandem
