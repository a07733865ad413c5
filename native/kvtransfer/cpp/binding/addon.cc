// The kvtransfer addon: a Receiver (listens, lands pages in registered memory) and a Sender
// (pushes pages over the transport chosen per pair). Declared for TypeScript in src/native.ts.
#include <napi.h>

#include "binding.h"
#include "choice.h"
#include "device.h"
#include "nccl_api.h"
#include "rdma.h"
#include "receiver_wrap.h"
#include "sender_wrap.h"

namespace {

using namespace kvt;

// The address of an ArrayBuffer's bytes, for tests that hand a buffer to another component.
Napi::Value ArrayBufferAddress(const Napi::CallbackInfo& info) {
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(ab.Data())));
}

EndpointView parseView(const Napi::Object& object) {
  EndpointView view;
  view.hostId = object.Get("hostId").As<Napi::String>().Utf8Value();
  view.pid = object.Get("pid").As<Napi::Number>().Uint32Value();
  view.devicePool = object.Get("devicePool").As<Napi::Boolean>().Value();
  auto offer = [&](const char* name, bool* ok, std::string* reason) {
    Napi::Object o = object.Get(name).As<Napi::Object>();
    *ok = o.Get("ok").As<Napi::Boolean>().Value();
    Napi::Value r = o.Get("reason");
    *reason = r.IsString() ? r.As<Napi::String>().Utf8Value() : "";
  };
  offer("cudaIpc", &view.ipc, &view.ipcReason);
  offer("nccl", &view.nccl, &view.ncclReason);
  offer("rdma", &view.rdma, &view.rdmaReason);
  return view;
}

// The transport rule itself (choice.cc), for tests and tools: chooseTransport(sender, receiver,
// preference) -> {usable: [{transport, reason}], rejected: [...]}; throws kv_transport_unavailable.
Napi::Value ChooseTransport(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EndpointView sender = parseView(info[0].As<Napi::Object>());
  EndpointView receiver = parseView(info[1].As<Napi::Object>());
  TransportPreference preference;
  try {
    preference = parseTransportPreference(info[2].As<Napi::String>().Utf8Value());
  } catch (const std::invalid_argument& error) {
    throw Napi::TypeError::New(env, error.what());
  }
  Choice choice;
  try {
    choice = chooseTransport(sender, receiver, preference);
  } catch (const KvtError& error) {
    throw binding::toJsError(env, error.code(), error.what());
  }
  auto list = [&](const std::vector<Candidate>& candidates) {
    Napi::Array out = Napi::Array::New(env, candidates.size());
    for (size_t i = 0; i < candidates.size(); ++i) {
      Napi::Object c = Napi::Object::New(env);
      c.Set("transport", transportName(candidates[i].kind));
      c.Set("reason", candidates[i].reason);
      out.Set(uint32_t(i), c);
    }
    return out;
  };
  Napi::Object out = Napi::Object::New(env);
  out.Set("usable", list(choice.usable));
  out.Set("rejected", list(choice.rejected));
  return out;
}

// What this build and machine can do: {cuda, cudaDevices, rdma: {ok, reason}, nccl: {ok, reason}, hostId}.
Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("cuda", Napi::Boolean::New(env, device::built()));
  out.Set("cudaDevices", Napi::Number::New(env, device::deviceCount()));
  rdma::Probe probe = rdma::probe();
  out.Set("rdmaBuilt", Napi::Boolean::New(env, rdma::built()));
  out.Set("rdma", binding::offerToJs(env, {probe.ok, probe.reason}));
  std::string why;
  bool ncclOk = nccl::load(&why) != nullptr;
  out.Set("nccl", binding::offerToJs(env, {ncclOk, why}));
  out.Set("hostId", hostIdentity());
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  binding::ReceiverWrap::Init(env, exports);
  binding::SenderWrap::Init(env, exports);
  exports.Set("arrayBufferAddress", Napi::Function::New(env, ArrayBufferAddress));
  exports.Set("chooseTransport", Napi::Function::New(env, ChooseTransport));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo));
  return exports;
}

}  // namespace

NODE_API_MODULE(kvtransfer, Init)
