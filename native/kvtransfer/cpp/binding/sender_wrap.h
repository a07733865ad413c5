// JS class Sender: new Sender({host, port, numStreams, spec, transport, regionBuffer |
// regionAddress + regionBytes + regionDevice}); connect(timeoutMs) -> Promise<{remoteNumPages,
// remoteRegionBytes, transport, transportReason}>; send(transferId, ranges: BigUint64Array of
// [src, dst, length]..., commit, timeoutMs, afterEvent: bigint) -> Promise<bytes>;
// prepare(transferId); abort(transferId); close(). Every blocking step runs on transport threads.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "transport.h"

namespace kvt::binding {

class SenderWrap : public Napi::ObjectWrap<SenderWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit SenderWrap(const Napi::CallbackInfo& info);
  ~SenderWrap() override;

  // Completion of one send, carried from a transport thread to the JS thread.
  struct Completion {
    uint64_t opId;
    std::optional<KvtError> error;
    uint64_t bytes;
  };
  void complete(Napi::Env env, const Completion& completion);
  void connected(std::unique_ptr<Sender> sender);

 private:
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Prepare(const Napi::CallbackInfo& info);
  Napi::Value Abort(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  void shutdown();

  ConnectOptions options_;
  Napi::ObjectReference regionBuffer_;
  std::unique_ptr<Sender> sender_;
  Napi::ThreadSafeFunction completions_;
  bool completionsRefed_ = false;
  std::unordered_map<uint64_t, Napi::Promise::Deferred> pending_;  // JS thread only
  uint64_t nextOpId_ = 1;
  bool connecting_ = false;
  bool closed_ = false;
};

}  // namespace kvt::binding
