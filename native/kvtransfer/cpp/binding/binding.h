// Helpers shared by the wrapped objects: option parsing and native errors as JS errors carrying
// the engine's code (src/errors.ts maps each code to its class).
#pragma once

#include <napi.h>

#include "errors.h"
#include "spec.h"
#include "transport.h"

namespace kvt::binding {

inline Napi::Error toJsError(Napi::Env env, ErrorCode code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, errorCodeName(code)));
  return error;
}

inline KvSpec parseSpec(const Napi::Object& object) {
  KvSpec spec;
  spec.model = object.Get("model").As<Napi::String>().Utf8Value();
  spec.dtype = object.Get("dtype").As<Napi::String>().Utf8Value();
  spec.numLayers = object.Get("numLayers").As<Napi::Number>().Uint32Value();
  spec.numKvHeads = object.Get("numKvHeads").As<Napi::Number>().Uint32Value();
  spec.headDim = object.Get("headDim").As<Napi::Number>().Uint32Value();
  spec.pageSize = object.Get("pageSize").As<Napi::Number>().Uint32Value();
  spec.numPages = object.Get("numPages").As<Napi::Number>().Uint32Value();
  if (spec.model.size() > 127) throw Napi::TypeError::New(object.Env(), "spec.model is longer than 127 bytes");
  if (dtypeBytes(spec.dtype) == 0) throw Napi::TypeError::New(object.Env(), "spec.dtype is unknown: " + spec.dtype);
  return spec;
}

// A region is either an ArrayBuffer (kept alive by the caller's reference) or {address, byteLength,
// device} (device -1: host memory; else the CUDA ordinal of a device pool).
inline Region parseRegion(const Napi::Object& options) {
  Napi::Value buffer = options.Get("regionBuffer");
  if (buffer.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = buffer.As<Napi::ArrayBuffer>();
    return {static_cast<uint8_t*>(ab.Data()), ab.ByteLength(), kHostDevice};
  }
  bool lossless = false;
  uint64_t address = options.Get("regionAddress").As<Napi::BigInt>().Uint64Value(&lossless);
  uint64_t length = options.Get("regionBytes").As<Napi::BigInt>().Uint64Value(&lossless);
  int device = options.Get("regionDevice").As<Napi::Number>().Int32Value();
  return {reinterpret_cast<uint8_t*>(address), length, device};
}

inline Napi::Object offerToJs(Napi::Env env, const Offer& offer) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("ok", Napi::Boolean::New(env, offer.ok));
  out.Set("reason", offer.ok ? env.Null() : Napi::String::New(env, offer.reason));
  return out;
}

inline uint64_t toU64(const Napi::Value& value) {
  bool lossless = false;
  return value.As<Napi::BigInt>().Uint64Value(&lossless);
}

}  // namespace kvt::binding
