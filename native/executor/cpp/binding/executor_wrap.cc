#include "binding/executor_wrap.h"

#include <omp.h>

#include "binding/marshal.h"
#include "tandem/errors.h"

namespace tandem::binding {
namespace {

const char* dtypeName(DType d) {
  switch (d) {
    case DType::BF16: return "bfloat16";
    case DType::F16: return "float16";
    default: return "float32";
  }
}

// Runs `work` off the JS thread; a tandem::Error rejects with its code, anything else INTERNAL.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  virtual void work() = 0;
  virtual Napi::Value result(Napi::Env env) = 0;

  void Execute() override {
    try {
      work();
    } catch (const Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "out_of_memory";
      SetError("host memory exhausted");
    } catch (const std::exception& e) {
      code_ = "executor_internal";
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    try {
      deferred_.Resolve(result(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(makeError(Env(), code_, e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string code_ = "executor_internal";
};

class OpenWorker : public PromiseWorker {
 public:
  OpenWorker(Napi::Env env, ExecutorOpenOptions options, std::function<void(std::shared_ptr<Executor>)> done)
      : PromiseWorker(env), options_(std::move(options)), done_(std::move(done)) {}

 protected:
  void work() override { executor_ = Executor::open(options_); }
  void OnError(const Napi::Error& e) override {
    done_(nullptr);
    PromiseWorker::OnError(e);
  }
  Napi::Value result(Napi::Env env) override {
    const ModelConfig& c = executor_->config();
    const KvPoolInfo& kv = executor_->kvPool();
    Napi::Object info = Napi::Object::New(env);
    info.Set("architecture", c.architecture);
    info.Set("modelType", c.modelType);
    info.Set("numLayers", c.numLayers);
    info.Set("hiddenSize", c.hiddenSize);
    info.Set("numHeads", c.numHeads);
    info.Set("numKvHeads", c.numKvHeads);
    info.Set("headDim", c.headDim);
    info.Set("intermediateSize", c.intermediateSize);
    info.Set("vocabSize", c.vocabSize);
    info.Set("maxPositionEmbeddings", static_cast<double>(c.maxPositionEmbeddings));
    info.Set("bosTokenId", c.bosTokenId >= 0 ? Napi::Number::New(env, c.bosTokenId) : env.Null());
    Napi::Array eos = Napi::Array::New(env, c.eosTokenIds.size());
    for (size_t i = 0; i < c.eosTokenIds.size(); i++) eos.Set(static_cast<uint32_t>(i), c.eosTokenIds[i]);
    info.Set("eosTokenIds", eos);
    info.Set("storedDtype", c.storedDtype);
    info.Set("computeDtype", dtypeName(executor_->computeDtype()));
    info.Set("tieWordEmbeddings", c.tieWordEmbeddings);
    info.Set("device", executor_->deviceName());
    info.Set("kvDtype", dtypeName(kv.dtype));
    info.Set("numPages", kv.numPages);
    info.Set("pageSize", kv.pageSize);
    info.Set("pageBytes", static_cast<double>(kv.pageBytes));
    info.Set("totalBytes", static_cast<double>(kv.totalBytes));
    info.Set("baseAddress", Napi::BigInt::New(env, static_cast<uint64_t>(kv.baseAddress)));
    done_(std::shared_ptr<Executor>(std::move(executor_)));
    return info;
  }

 private:
  ExecutorOpenOptions options_;
  std::function<void(std::shared_ptr<Executor>)> done_;
  std::unique_ptr<Executor> executor_;
};

class ForwardWorker : public PromiseWorker {
 public:
  // onLayerDone: a JS function called with each layer index as its K/V land (may be undefined).
  ForwardWorker(Napi::Env env, std::shared_ptr<Executor> executor, std::vector<SequenceInput> batch,
                Napi::Value onLayerDone)
      : PromiseWorker(env), executor_(std::move(executor)), batch_(std::move(batch)) {
    if (onLayerDone.IsFunction()) {
      layerDone_ = Napi::ThreadSafeFunction::New(env, onLayerDone.As<Napi::Function>(), "tandem-layer-done", 0, 1);
      hasLayerDone_ = true;
    }
  }
  ~ForwardWorker() override {
    if (hasLayerDone_) layerDone_.Release();  // calls already queued are still delivered
  }

 protected:
  void work() override {
    LayerDoneHook hook;
    if (hasLayerDone_) {
      hook = [this](int32_t layer) {
        layerDone_.NonBlockingCall(
            [layer](Napi::Env env, Napi::Function fn) { fn.Call({Napi::Number::New(env, layer)}); });
      };
    }
    executor_->forward(batch_, outputs_, hook);
  }
  Napi::Value result(Napi::Env env) override { return writeOutputs(env, outputs_); }

 private:
  std::shared_ptr<Executor> executor_;
  std::vector<SequenceInput> batch_;
  std::vector<SequenceOutput> outputs_;
  Napi::ThreadSafeFunction layerDone_;
  bool hasLayerDone_ = false;
};

std::string optionalString(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

double optionalNumber(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

}  // namespace

Napi::Function ExecutorWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeExecutor",
                     {InstanceMethod("open", &ExecutorWrap::open), InstanceMethod("forward", &ExecutorWrap::forward),
                      InstanceMethod("stepTiming", &ExecutorWrap::stepTiming),
                      InstanceMethod("close", &ExecutorWrap::close)});
}

ExecutorWrap::ExecutorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ExecutorWrap>(info) {}

Napi::Value ExecutorWrap::open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (executor_ || opening_) throw makeError(env, "invalid_batch", "this handle is already open");
  if (info.Length() < 1 || !info[0].IsObject()) throw makeError(env, "invalid_batch", "open(options) needs an object");
  Napi::Object o = info[0].As<Napi::Object>();
  ExecutorOpenOptions options;
  options.modelDir = optionalString(o, "modelDir", "");
  options.device = optionalString(o, "device", "cpu");
  options.dtype = optionalString(o, "dtype", "");
  options.kv.pageSize = static_cast<int32_t>(optionalNumber(o, "pageSize", 16));
  options.kv.numPages = static_cast<int32_t>(optionalNumber(o, "numPages", 0));
  options.kv.kvCacheBytes = static_cast<int64_t>(optionalNumber(o, "kvCacheBytes", 0));
  options.kv.kvCacheFraction = optionalNumber(o, "kvCacheFraction", 0.85);
  options.numThreads = static_cast<int32_t>(optionalNumber(o, "numThreads", 0));
  const std::string rounding = optionalString(o, "ropeFrequencyRounding", "none");
  if (rounding != "none" && rounding != "stored-dtype")
    throw makeError(env, "invalid_batch", "ropeFrequencyRounding must be \"none\" or \"stored-dtype\"");
  options.roundRopeFrequenciesToStoredDtype = rounding == "stored-dtype";
  opening_ = true;
  // The worker hands the executor back on the JS thread (nullptr on failure); Ref keeps this
  // handle alive meanwhile.
  Ref();
  auto* worker = new OpenWorker(env, std::move(options), [this](std::shared_ptr<Executor> ex) {
    executor_ = std::move(ex);
    opening_ = false;
    Unref();
  });
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value ExecutorWrap::forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!executor_) throw makeError(env, "executor_closed", "the executor is closed");
  std::vector<SequenceInput> batch = readBatch(env, info[0]);
  auto* worker = new ForwardWorker(env, executor_, std::move(batch), info[1]);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// The last pass's device time and the idle gap before it (ms; -1: not measured). Read after a
// forward promise settled: the TypeScript side never runs two passes at once.
Napi::Value ExecutorWrap::stepTiming(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object timing = Napi::Object::New(env);
  const StepTiming t = executor_ ? executor_->lastStepTiming() : StepTiming{};
  timing.Set("deviceMs", Napi::Number::New(env, t.deviceMs));
  timing.Set("gapMs", Napi::Number::New(env, t.gapMs));
  return timing;
}

Napi::Value ExecutorWrap::close(const Napi::CallbackInfo& info) {
  executor_.reset();
  return info.Env().Undefined();
}

}  // namespace tandem::binding
