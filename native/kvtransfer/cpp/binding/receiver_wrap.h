// JS class Receiver: new Receiver({host, port, spec, regionBuffer | regionAddress + regionBytes +
// regionDevice, ioTimeoutMs, onEvent}) listens at once; port, capabilities(), expect(transferId),
// release(transferId) -> bool, bytesReceived(transferId), close().
#pragma once

#include <napi.h>

#include <memory>

#include "transport.h"

namespace kvt::binding {

class ReceiverWrap : public Napi::ObjectWrap<ReceiverWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit ReceiverWrap(const Napi::CallbackInfo& info);
  ~ReceiverWrap() override;

 private:
  Napi::Value Port(const Napi::CallbackInfo& info);
  Napi::Value Capabilities(const Napi::CallbackInfo& info);
  Napi::Value BytesReceived(const Napi::CallbackInfo& info);
  Napi::Value Expect(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  void shutdown();

  std::unique_ptr<Receiver> receiver_;
  Napi::ThreadSafeFunction onEvent_;
  Napi::ObjectReference regionBuffer_;  // keeps an ArrayBuffer region alive
  bool closed_ = false;
};

}  // namespace kvt::binding
