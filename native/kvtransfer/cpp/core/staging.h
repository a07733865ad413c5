// TCP for a GPU pool: pinned host staging, double-buffered, on a transport-owned CUDA stream.
// The side that holds the GPU pool stages; the wire (Data frames) is the same as for host pools,
// so a GPU sender may talk to a host receiver and the other way round.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "device.h"
#include "plan.h"

namespace kvt {

constexpr uint64_t kStagingChunkBytes = 8ull << 20;

// A foreign CUDA event's recording (the executor's "layer L is written"), captured at send()
// time on the caller's thread, so a transport thread can later make its stream wait for exactly
// that recording even if the foreign event is recorded again meanwhile.
class DeviceFence {
 public:
  explicit DeviceFence(int ordinal) : event_(ordinal) {}
  void waitOn(device::Stream& stream) const { stream.waitEvent(event_.handle()); }
  void synchronize() const { event_.synchronize(); }  // for copies the host starts (RDMA)

 private:
  friend class FenceMaker;
  device::Event event_;
};

class FenceMaker {
 public:
  explicit FenceMaker(int ordinal) : relay_(ordinal) {}
  // Null when foreignEvent is 0. Two CUDA calls and an event creation; never waits.
  std::shared_ptr<DeviceFence> capture(uint64_t foreignEvent);

 private:
  device::Stream relay_;
};

// Sender: gathers chunk k+1 (device -> pinned) while chunk k is written to the socket.
class SendStaging {
 public:
  explicit SendStaging(const Region& region, uint64_t chunkBytes = kStagingChunkBytes);
  // Calls write(chunk, bytes) for each chunk once its bytes are in host memory.
  void run(const std::vector<Range>& ranges, const DeviceFence* after,
           const std::function<void(const Chunk&, const uint8_t*)>& write);

 private:
  Region region_;
  uint64_t chunkBytes_;
  device::CopyMode mode_;
  device::Stream stream_;
  device::PinnedBuffer buffers_[2];
  device::Event ready_[2];
};

// Receiver: frames land in one pinned buffer while the other is copied into the pool.
class ReceiveStaging {
 public:
  explicit ReceiveStaging(const Region& region, uint64_t bufferBytes = kStagingChunkBytes);
  ~ReceiveStaging();
  // Host memory for up to `wanted` bytes of a frame (at least 1). When the current buffer is
  // full it is copied to the pool and the other one, once its copy finished, takes over: what
  // that copy settled is appended to `settled`.
  uint8_t* reserve(uint64_t wanted, uint64_t* granted, std::vector<LandingLedger::Settled>& settled);
  // The `length` bytes just received at the reserved memory belong at pool offset dstOffset.
  void staged(uint64_t dstOffset, uint64_t length, uint64_t transferId, bool frameEnd);
  // Copies what is staged, waits for every copy, and returns what settled.
  std::vector<LandingLedger::Settled> drain();

 private:
  struct Buffer {
    std::unique_ptr<device::PinnedBuffer> host;
    std::unique_ptr<device::Event> copied;
    std::vector<device::Copy> copies;
    LandingLedger ledger;
    uint64_t used = 0;
    bool inFlight = false;
  };
  void submit(Buffer& buffer);
  void settle(Buffer& buffer, std::vector<LandingLedger::Settled>& settled);

  Region region_;
  device::CopyMode mode_;
  device::Stream stream_;
  Buffer buffers_[2];
  int current_ = 0;
};

}  // namespace kvt
