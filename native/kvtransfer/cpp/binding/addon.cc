// The kvtransfer addon: a Receiver (listens, lands pages in registered memory) and a Sender
// (pushes pages over parallel streams). Declared for TypeScript in src/native.ts.
#include <napi.h>

#include "receiver_wrap.h"
#include "sender_wrap.h"

namespace {

// The address of an ArrayBuffer's bytes, for tests that hand a buffer to another component.
Napi::Value ArrayBufferAddress(const Napi::CallbackInfo& info) {
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(ab.Data())));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  kvt::binding::ReceiverWrap::Init(env, exports);
  kvt::binding::SenderWrap::Init(env, exports);
  exports.Set("arrayBufferAddress", Napi::Function::New(env, ArrayBufferAddress));
  return exports;
}

}  // namespace

NODE_API_MODULE(kvtransfer, Init)
