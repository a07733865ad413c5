#include "binding/marshal.h"

#include <cmath>

namespace tandem::binding {
namespace {

[[noreturn]] void invalid(const Napi::Env& env, const std::string& message) {
  throw makeError(env, "invalid_batch", message);
}

std::vector<int32_t> readInt32Array(const Napi::Env& env, const Napi::Object& obj, const char* key, bool nullable) {
  Napi::Value v = obj.Get(key);
  if (nullable && (v.IsNull() || v.IsUndefined())) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    invalid(env, std::string(key) + " must be an Int32Array");
  auto arr = v.As<Napi::Int32Array>();
  return std::vector<int32_t>(arr.Data(), arr.Data() + arr.ElementLength());
}

double readNumber(const Napi::Env& env, const Napi::Object& obj, const char* key) {
  Napi::Value v = obj.Get(key);
  if (!v.IsNumber()) invalid(env, std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

SamplingParams readSampling(const Napi::Env& env, const Napi::Value& value) {
  if (!value.IsObject()) invalid(env, "sampling must be an object");
  Napi::Object o = value.As<Napi::Object>();
  SamplingParams sp;
  sp.temperature = static_cast<float>(readNumber(env, o, "temperature"));
  sp.topK = static_cast<int32_t>(readNumber(env, o, "topK"));
  sp.topP = static_cast<float>(readNumber(env, o, "topP"));
  sp.minP = static_cast<float>(readNumber(env, o, "minP"));
  sp.repetitionPenalty = static_cast<float>(readNumber(env, o, "repetitionPenalty"));
  sp.frequencyPenalty = static_cast<float>(readNumber(env, o, "frequencyPenalty"));
  sp.presencePenalty = static_cast<float>(readNumber(env, o, "presencePenalty"));
  sp.numTopLogprobs = static_cast<int32_t>(readNumber(env, o, "numTopLogprobs"));
  std::vector<int32_t> biasIds = readInt32Array(env, o, "logitBiasIds", true);
  Napi::Value biasValues = o.Get("logitBiasValues");
  if (!biasIds.empty()) {
    if (!biasValues.IsTypedArray() || biasValues.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
        biasValues.As<Napi::Float32Array>().ElementLength() != biasIds.size())
      invalid(env, "logitBiasValues must be a Float32Array as long as logitBiasIds");
    auto vals = biasValues.As<Napi::Float32Array>();
    for (size_t i = 0; i < biasIds.size(); i++) sp.logitBias.emplace_back(biasIds[i], vals[i]);
  }
  Napi::Value seed = o.Get("seed");
  if (seed.IsNumber()) {
    const double s = seed.As<Napi::Number>().DoubleValue();
    if (!(s >= 0 && s == std::floor(s) && s <= 9007199254740991.0)) invalid(env, "seed must be a non-negative integer");
    sp.hasSeed = true;
    sp.seed = static_cast<uint64_t>(s);
  } else if (!seed.IsNull() && !seed.IsUndefined()) {
    invalid(env, "seed must be a number or null");
  }
  sp.allowedTokenIds = readInt32Array(env, o, "allowedTokenIds", true);
  Napi::Value allowed = o.Get("allowedTokenIds");
  if (!allowed.IsNull() && !allowed.IsUndefined() && sp.allowedTokenIds.empty())
    invalid(env, "allowedTokenIds must not be empty (null allows every token)");
  Napi::Value mask = o.Get("allowedTokenMask");
  if (!mask.IsNull() && !mask.IsUndefined()) {
    if (!mask.IsTypedArray() || mask.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      invalid(env, "allowedTokenMask must be a Uint32Array or null");
    auto words = mask.As<Napi::Uint32Array>();
    if (words.ElementLength() == 0) invalid(env, "allowedTokenMask must not be empty (null allows every token)");
    sp.allowedTokenMask.assign(words.Data(), words.Data() + words.ElementLength());
  }
  return sp;
}

Napi::Float32Array toFloat32Array(const Napi::Env& env, const std::vector<float>& v) {
  auto arr = Napi::Float32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), arr.Data());
  return arr;
}

}  // namespace

Napi::Error makeError(const Napi::Env& env, const std::string& code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

std::vector<SequenceInput> readBatch(const Napi::Env& env, const Napi::Value& value) {
  if (!value.IsArray()) invalid(env, "batch must be an array");
  Napi::Array arr = value.As<Napi::Array>();
  std::vector<SequenceInput> batch(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value item = arr.Get(i);
    if (!item.IsObject()) invalid(env, "batch[" + std::to_string(i) + "] must be an object");
    Napi::Object o = item.As<Napi::Object>();
    SequenceInput& s = batch[i];
    s.tokenIds = readInt32Array(env, o, "tokenIds", false);
    s.startPos = static_cast<int32_t>(readNumber(env, o, "startPos"));
    s.pageTable = readInt32Array(env, o, "pageTable", false);
    s.sampleIndices = readInt32Array(env, o, "sampleIndices", false);
    s.sampling = readSampling(env, o.Get("sampling"));
    s.promptTokenIds = readInt32Array(env, o, "promptTokenIds", true);
    s.outputTokenIds = readInt32Array(env, o, "outputTokenIds", true);
    s.targetIds = readInt32Array(env, o, "targetIds", true);
    s.returnLogits = o.Get("returnLogits").ToBoolean();
    s.returnProbs = o.Get("returnProbs").ToBoolean();
  }
  return batch;
}

Napi::Value writeOutputs(const Napi::Env& env, const std::vector<SequenceOutput>& outputs) {
  Napi::Array result = Napi::Array::New(env, outputs.size());
  for (size_t s = 0; s < outputs.size(); s++) {
    const SequenceOutput& so = outputs[s];
    Napi::Array samples = Napi::Array::New(env, so.samples.size());
    for (size_t k = 0; k < so.samples.size(); k++) {
      const SampleOutput& sample = so.samples[k];
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", sample.index);
      o.Set("tokenId", sample.tokenId);
      o.Set("logprob", sample.logprob);
      auto topIds = Napi::Int32Array::New(env, sample.topLogprobs.size());
      auto topValues = Napi::Float32Array::New(env, sample.topLogprobs.size());
      for (size_t r = 0; r < sample.topLogprobs.size(); r++) {
        topIds[r] = sample.topLogprobs[r].first;
        topValues[r] = sample.topLogprobs[r].second;
      }
      o.Set("topIds", topIds);
      o.Set("topLogprobs", topValues);
      o.Set("logits", sample.logits.empty() ? env.Null() : toFloat32Array(env, sample.logits));
      o.Set("probs", sample.probs.empty() ? env.Null() : toFloat32Array(env, sample.probs));
      samples.Set(static_cast<uint32_t>(k), o);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("samples", samples);
    out.Set("targetLogprobs", so.targetLogprobs.empty() ? env.Null() : toFloat32Array(env, so.targetLogprobs));
    result.Set(static_cast<uint32_t>(s), out);
  }
  return result;
}

}  // namespace tandem::binding
