// NativeExecutor: the JS handle on one tandem::Executor. open / forward run on libuv's thread
// pool (Napi::AsyncWorker) and resolve promises; close() drops the executor once no forward
// holds it (workers keep a shared_ptr).
#pragma once

#include <napi.h>

#include <memory>

#include "common/executor.h"

namespace tandem::binding {

class ExecutorWrap : public Napi::ObjectWrap<ExecutorWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit ExecutorWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<Executor> executor_;
  bool opening_ = false;

  Napi::Value open(const Napi::CallbackInfo& info);
  Napi::Value forward(const Napi::CallbackInfo& info);
  Napi::Value stepTiming(const Napi::CallbackInfo& info);
  Napi::Value close(const Napi::CallbackInfo& info);
};

}  // namespace tandem::binding
