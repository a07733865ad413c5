#include "receiver_wrap.h"

#include "binding.h"

namespace kvt::binding {

void ReceiverWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "Receiver",
                                   {InstanceAccessor<&ReceiverWrap::Port>("port"),
                                    InstanceMethod<&ReceiverWrap::Capabilities>("capabilities"),
                                    InstanceMethod<&ReceiverWrap::BytesReceived>("bytesReceived"),
                                    InstanceMethod<&ReceiverWrap::Expect>("expect"),
                                    InstanceMethod<&ReceiverWrap::Release>("release"),
                                    InstanceMethod<&ReceiverWrap::Close>("close")});
  exports.Set("Receiver", cls);
}

static const char* eventTypeName(ReceiverEvent::Type type) {
  switch (type) {
    case ReceiverEvent::Type::Completed: return "completed";
    case ReceiverEvent::Type::Failed: return "failed";
    case ReceiverEvent::Type::Rejected: return "rejected";
    case ReceiverEvent::Type::Released: return "released";
  }
  return "failed";
}

ReceiverWrap::ReceiverWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ReceiverWrap>(info) {
  Napi::Env env = info.Env();
  Napi::Object options = info[0].As<Napi::Object>();
  KvSpec spec = parseSpec(options.Get("spec").As<Napi::Object>());
  Region region = parseRegion(options);
  if (options.Get("regionBuffer").IsArrayBuffer())
    regionBuffer_ = Napi::Persistent(options.Get("regionBuffer").As<Napi::Object>());
  ListenOptions listen;
  listen.spec = spec;
  listen.region = region;
  listen.host = options.Get("host").As<Napi::String>().Utf8Value();
  listen.port = static_cast<uint16_t>(options.Get("port").As<Napi::Number>().Uint32Value());
  listen.ioTimeoutMs = options.Get("ioTimeoutMs").As<Napi::Number>().Int64Value();
  onEvent_ = Napi::ThreadSafeFunction::New(env, options.Get("onEvent").As<Napi::Function>(), "kvtReceiverEvents", 0, 1);
  Napi::ThreadSafeFunction tsfn = onEvent_;
  try {
    receiver_ = kvt::listen(listen, [tsfn](ReceiverEvent event) mutable {
      auto* data = new ReceiverEvent(std::move(event));
      napi_status status = tsfn.NonBlockingCall(data, [](Napi::Env env, Napi::Function callback, ReceiverEvent* ev) {
        std::unique_ptr<ReceiverEvent> owned(ev);
        if (env == nullptr || callback.IsEmpty()) return;
        Napi::Object object = Napi::Object::New(env);
        object.Set("type", eventTypeName(ev->type));
        object.Set("transferId", Napi::BigInt::New(env, ev->transferId));
        object.Set("bytes", Napi::Number::New(env, double(ev->bytes)));
        bool failure = ev->type == ReceiverEvent::Type::Failed || ev->type == ReceiverEvent::Type::Rejected;
        object.Set("code", !failure ? env.Null()
                                                                        : Napi::String::New(env, errorCodeName(ev->code)));
        object.Set("message", Napi::String::New(env, ev->message));
        object.Set("transport", Napi::String::New(env, transportName(ev->transport)));
        callback.Call({object});
      });
      if (status != napi_ok) delete data;
    });
  } catch (const KvtError& error) {
    onEvent_.Release();
    closed_ = true;
    throw toJsError(env, error.code(), error.what());
  }
}

ReceiverWrap::~ReceiverWrap() { shutdown(); }

void ReceiverWrap::shutdown() {
  if (closed_) return;
  closed_ = true;
  receiver_->close();  // joins every thread: no event is queued after this
  onEvent_.Release();
}

Napi::Value ReceiverWrap::Port(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), receiver_ ? receiver_->port() : 0);
}

Napi::Value ReceiverWrap::Capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) throw toJsError(env, ErrorCode::Closed, "receiver is closed");
  ReceiverCapabilities caps = receiver_->capabilities();
  Napi::Object out = Napi::Object::New(env);
  out.Set("hostId", caps.hostId);
  out.Set("device", caps.device == kHostDevice ? Napi::Value(env.Null()) : Napi::Number::New(env, caps.device));
  out.Set("cudaIpc", offerToJs(env, caps.cudaIpc));
  out.Set("nccl", offerToJs(env, caps.nccl));
  out.Set("rdma", offerToJs(env, caps.rdma));
  return out;
}

Napi::Value ReceiverWrap::BytesReceived(const Napi::CallbackInfo& info) {
  uint64_t transferId = toU64(info[0]);
  return Napi::Number::New(info.Env(), closed_ ? 0.0 : double(receiver_->bytesReceived(transferId)));
}

Napi::Value ReceiverWrap::Expect(const Napi::CallbackInfo& info) {
  if (!closed_) receiver_->expect(toU64(info[0]));
  return info.Env().Undefined();
}

Napi::Value ReceiverWrap::Release(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), closed_ || receiver_->release(toU64(info[0])));
}

Napi::Value ReceiverWrap::Close(const Napi::CallbackInfo& info) {
  shutdown();
  return info.Env().Undefined();
}

}  // namespace kvt::binding
