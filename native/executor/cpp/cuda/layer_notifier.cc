// LayerNotifier: see layer_notifier.h.
#include "layer_notifier.h"

#include "cuda_check.h"

namespace tandem::cuda {

LayerNotifier::~LayerNotifier() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (cudaEvent_t event : events_) cudaEventDestroy(event);
}

void LayerNotifier::begin(int32_t numLayers, const LayerDoneHook* hook) {
  while (static_cast<int32_t>(events_.size()) < numLayers) {
    cudaEvent_t event = nullptr;
    CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    events_.push_back(event);
  }
  hook_ = hook;
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void LayerNotifier::record(int32_t layer, cudaStream_t stream) {
  CUDA_CHECK(cudaEventRecord(events_[static_cast<size_t>(layer)], stream));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.push_back(layer);
    numInFlight_++;
  }
  changed_.notify_all();
}

void LayerNotifier::finish() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return numInFlight_ == 0; });
}

void LayerNotifier::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    if (stopping_) return;
    const int32_t layer = pending_.front();
    pending_.pop_front();
    const LayerDoneHook* hook = hook_;
    lock.unlock();
    // A failed wait (the pass's own error surfaces on its stream) still reports the layer: the
    // caller learns of the failure from forward(), and every layer is reported exactly once.
    cudaEventSynchronize(events_[static_cast<size_t>(layer)]);
    if (hook != nullptr && *hook) (*hook)(layer);
    lock.lock();
    numInFlight_--;
    changed_.notify_all();
  }
}

}  // namespace tandem::cuda
