// Per-layer "K/V landed" notifications without stalling the compute stream: the forward pass
// records one device event per layer on its stream; a host thread waits on them in order and calls
// the hook. (A host callback in the stream, cudaLaunchHostFunc, stops the stream until the host
// function returns and serialises every later kernel behind the host.) finish() waits until every
// layer of the pass has been reported, so no call outlives forward().
#pragma once

#include <cuda_runtime.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "tandem/backend.h"

namespace tandem::cuda {

class LayerNotifier {
 public:
  LayerNotifier() = default;
  LayerNotifier(const LayerNotifier&) = delete;
  LayerNotifier& operator=(const LayerNotifier&) = delete;
  ~LayerNotifier();

  // A pass with `numLayers` layers reports to `hook` (events are made once, for the device that
  // is current).
  void begin(int32_t numLayers, const LayerDoneHook* hook);
  // Records layer's event on the stream (the layer's K/V are final once the stream passes it).
  void record(int32_t layer, cudaStream_t stream);
  // Waits until every recorded layer was reported (the pass is over, or it threw).
  void finish();

 private:
  void run();

  std::vector<cudaEvent_t> events_;  // one per layer, no timing
  const LayerDoneHook* hook_ = nullptr;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<int32_t> pending_;  // layers recorded, not yet reported
  int32_t numInFlight_ = 0;       // recorded and not yet reported (pending or being waited on)
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tandem::cuda
