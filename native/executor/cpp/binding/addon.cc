// The addon's exports: NativeExecutor (executor_wrap.h) and measureMemoryBandwidth().
#include <napi.h>
#include <omp.h>

#include "binding/executor_wrap.h"
#include "binding/marshal.h"
#include "cpu/kernels.h"

namespace tandem::binding {
namespace {

class BandwidthWorker : public Napi::AsyncWorker {
 public:
  BandwidthWorker(Napi::Env env, int64_t numElements, int repeats, int numThreads)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        numElements_(numElements),
        repeats_(repeats),
        numThreads_(numThreads) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override { bytesPerSecond_ = cpu::measureMemoryBandwidth(numElements_, repeats_, numThreads_); }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), bytesPerSecond_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(makeError(Env(), "executor_internal", e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int64_t numElements_;
  int repeats_;
  int numThreads_;
  double bytesPerSecond_ = 0;
};

// measureMemoryBandwidth({ bytesPerArray?, repeats?, numThreads? }) -> Promise<bytes per second>
Napi::Value measureMemoryBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double bytesPerArray = 256.0 * 1024 * 1024;
  double repeats = 10;
  double threads = omp_get_num_procs();
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Object o = info[0].As<Napi::Object>();
    if (o.Get("bytesPerArray").IsNumber()) bytesPerArray = o.Get("bytesPerArray").As<Napi::Number>().DoubleValue();
    if (o.Get("repeats").IsNumber()) repeats = o.Get("repeats").As<Napi::Number>().DoubleValue();
    if (o.Get("numThreads").IsNumber()) threads = o.Get("numThreads").As<Napi::Number>().DoubleValue();
  }
  auto* worker = new BandwidthWorker(env, static_cast<int64_t>(bytesPerArray / 4), static_cast<int>(repeats),
                                     static_cast<int>(threads));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace
}  // namespace tandem::binding

static Napi::Object initAddon(Napi::Env env, Napi::Object exports) {
  using namespace tandem::binding;
  exports.Set("NativeExecutor", ExecutorWrap::define(env));
  exports.Set("measureMemoryBandwidth", Napi::Function::New(env, measureMemoryBandwidth));
#ifdef TANDEM_WITH_CUDA
  exports.Set("withCuda", Napi::Boolean::New(env, true));
#else
  exports.Set("withCuda", Napi::Boolean::New(env, false));
#endif
  return exports;
}

NODE_API_MODULE(tandem_executor, initAddon)
