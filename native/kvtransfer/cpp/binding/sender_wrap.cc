#include "sender_wrap.h"

#include "binding.h"

namespace kvt::binding {

namespace {

// connect() on a worker thread (DNS, TCP connects, the handshake and the transport's setup all block).
class ConnectWorker : public Napi::AsyncWorker {
 public:
  ConnectWorker(Napi::Env env, SenderWrap* wrap, Napi::ObjectReference self, ConnectOptions options, int64_t timeoutMs)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), wrap_(wrap), self_(std::move(self)),
        options_(std::move(options)), timeoutMs_(timeoutMs) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      connected_ = kvt::connect(options_, Deadline::in(timeoutMs_));
    } catch (const KvtError& error) {
      code_ = error.code();
      SetError(error.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object result = Napi::Object::New(env);
    Sender& sender = *connected_.sender;
    result.Set("remoteNumPages", Napi::Number::New(env, sender.remoteNumPages()));
    result.Set("remoteRegionBytes", Napi::BigInt::New(env, sender.remoteRegionBytes()));
    result.Set("transport", Napi::String::New(env, transportName(sender.transport())));
    result.Set("transportReason", Napi::String::New(env, connected_.reason));
    wrap_->connected(std::move(connected_.sender));
    deferred_.Resolve(result);
  }
  void OnError(const Napi::Error& error) override {
    wrap_->connected(nullptr);
    deferred_.Reject(toJsError(Env(), code_, error.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  SenderWrap* wrap_;
  Napi::ObjectReference self_;  // keeps the wrap alive while connecting
  ConnectOptions options_;
  int64_t timeoutMs_;
  Connected connected_;
  ErrorCode code_ = ErrorCode::Connect;
};

}  // namespace

void SenderWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "Sender",
                                   {InstanceMethod<&SenderWrap::Connect>("connect"),
                                    InstanceMethod<&SenderWrap::Send>("send"),
                                    InstanceMethod<&SenderWrap::Prepare>("prepare"),
                                    InstanceMethod<&SenderWrap::Abort>("abort"),
                                    InstanceMethod<&SenderWrap::Close>("close")});
  exports.Set("Sender", cls);
}

SenderWrap::SenderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SenderWrap>(info) {
  Napi::Env env = info.Env();
  Napi::Object options = info[0].As<Napi::Object>();
  options_.spec = parseSpec(options.Get("spec").As<Napi::Object>());
  options_.region = parseRegion(options);
  if (options.Get("regionBuffer").IsArrayBuffer())
    regionBuffer_ = Napi::Persistent(options.Get("regionBuffer").As<Napi::Object>());
  options_.host = options.Get("host").As<Napi::String>().Utf8Value();
  options_.port = static_cast<uint16_t>(options.Get("port").As<Napi::Number>().Uint32Value());
  options_.numStreams = options.Get("numStreams").As<Napi::Number>().Uint32Value();
  try {
    options_.transport = parseTransportPreference(options.Get("transport").As<Napi::String>().Utf8Value());
  } catch (const std::invalid_argument& error) {
    closed_ = true;  // nothing to shut down
    throw Napi::TypeError::New(env, error.what());
  }
  // A no-op JS function: each completion carries its own C++ callback.
  Napi::Function noop = Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
  completions_ = Napi::ThreadSafeFunction::New(env, noop, "kvtSenderCompletions", 0, 1);
  completions_.Unref(env);  // only pending sends keep the process alive
}

SenderWrap::~SenderWrap() { shutdown(); }

void SenderWrap::connected(std::unique_ptr<Sender> sender) {
  connecting_ = false;
  if (closed_ && sender) sender->close();
  else sender_ = std::move(sender);
}

Napi::Value SenderWrap::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_ || connecting_ || sender_) throw toJsError(env, ErrorCode::Closed, "connect() may be called once");
  connecting_ = true;
  int64_t timeoutMs = info[0].As<Napi::Number>().Int64Value();
  auto* worker = new ConnectWorker(env, this, Napi::Persistent(Value()), options_, timeoutMs);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value SenderWrap::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_ || !sender_) throw toJsError(env, ErrorCode::Closed, closed_ ? "sender is closed" : "sender is not connected");
  uint64_t transferId = toU64(info[0]);
  Napi::BigUint64Array triples = info[1].As<Napi::BigUint64Array>();
  bool commit = info[2].As<Napi::Boolean>().Value();
  int64_t timeoutMs = info[3].As<Napi::Number>().Int64Value();
  uint64_t afterEvent = info[4].IsBigInt() ? toU64(info[4]) : 0;
  if (triples.ElementLength() % 3 != 0) throw Napi::TypeError::New(env, "ranges must hold [src, dst, length] triples");
  std::vector<Range> ranges(triples.ElementLength() / 3);
  for (size_t i = 0; i < ranges.size(); ++i) ranges[i] = {triples[3 * i], triples[3 * i + 1], triples[3 * i + 2]};

  uint64_t opId = nextOpId_++;
  auto deferred = Napi::Promise::Deferred::New(env);
  Napi::ThreadSafeFunction tsfn = completions_;
  SenderWrap* self = this;
  try {
    sender_->send(transferId, std::move(ranges), commit, Deadline::in(timeoutMs), afterEvent,
                  [tsfn, self, opId](std::optional<KvtError> error, uint64_t bytes) mutable {
                    auto* completion = new Completion{opId, std::move(error), bytes};
                    napi_status status = tsfn.NonBlockingCall(
                        completion, [self](Napi::Env env, Napi::Function, Completion* c) {
                          std::unique_ptr<Completion> owned(c);
                          if (env != nullptr) self->complete(env, *c);
                        });
                    if (status != napi_ok) delete completion;
                  });
  } catch (const KvtError& error) {
    throw toJsError(env, error.code(), error.what());
  }
  pending_.emplace(opId, deferred);
  if (pending_.size() == 1) Ref();  // the wrap outlives its pending completions
  if (!completionsRefed_) {
    completions_.Ref(env);
    completionsRefed_ = true;
  }
  return deferred.Promise();
}

void SenderWrap::complete(Napi::Env env, const Completion& completion) {
  auto it = pending_.find(completion.opId);
  if (it == pending_.end()) return;
  Napi::Promise::Deferred deferred = it->second;
  pending_.erase(it);
  if (pending_.empty()) {
    if (completionsRefed_ && !closed_) {
      completions_.Unref(env);
      completionsRefed_ = false;
    }
    Unref();
  }
  Napi::HandleScope scope(env);
  if (completion.error)
    deferred.Reject(toJsError(env, completion.error->code(), completion.error->what()).Value());
  else
    deferred.Resolve(Napi::Number::New(env, double(completion.bytes)));
}

Napi::Value SenderWrap::Prepare(const Napi::CallbackInfo& info) {
  if (!closed_ && sender_) sender_->prepare(toU64(info[0]));
  return info.Env().Undefined();
}

Napi::Value SenderWrap::Abort(const Napi::CallbackInfo& info) {
  if (!closed_ && sender_) sender_->abort(toU64(info[0]));
  return info.Env().Undefined();
}

void SenderWrap::shutdown() {
  if (closed_) return;
  closed_ = true;
  if (sender_) sender_->close();  // fails queued sends with Closed; their completions are queued
  completions_.Release();         // queued completions still run before the function finalizes
}

Napi::Value SenderWrap::Close(const Napi::CallbackInfo& info) {
  shutdown();
  return info.Env().Undefined();
}

}  // namespace kvt::binding
