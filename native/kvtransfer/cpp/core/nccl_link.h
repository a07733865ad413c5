// One NCCL communicator between a sender (rank 0) and a receiver (rank 1), and the pipeline that
// moves an announcement's ranges through it: the sender gathers chunk k into one device buffer
// while chunk k-1 is sent from the other; the receiver receives chunk k while chunk k-1 is
// scattered into the pool. Chunks are cut by planChunks(ranges, wire::kNcclChunkBytes) on both
// sides. All ordering is on the device (events between a copy stream and a communication
// stream); the host waits once per announcement, on a transport thread, watching the peer.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "device.h"
#include "nccl_api.h"
#include "socket_io.h"
#include "staging.h"

namespace kvt {

class NcclLink {
 public:
  // Joins the pair's communicator: both ends call it with the id the sender made (blocks until
  // both joined). Throws KvtError(Device) naming NCCL's error.
  NcclLink(int ordinal, const nccl::UniqueId& id, int rank);
  ~NcclLink();
  NcclLink(const NcclLink&) = delete;
  NcclLink& operator=(const NcclLink&) = delete;

  static nccl::UniqueId newId();  // ncclGetUniqueId (the sender, rank 0)

  // Sender: ranges' sources in the pool at poolBase, packed in order, after `after` when given.
  void send(const std::vector<Range>& ranges, const uint8_t* poolBase, const DeviceFence* after);
  // Receiver: the announced [dstOffset, length] ranges (srcOffset ignored); lands them in the pool
  // at poolBase, or receives and drops them when !land (the sender must not hang).
  void receive(const std::vector<Range>& ranges, uint8_t* poolBase, bool land);
  // Blocks until everything queued so far has finished. Between checks of the device it asks
  // peerGone() and the deadline; on either it aborts the communicator and throws PeerClosed /
  // Timeout. An asynchronous NCCL error throws Device.
  void wait(const std::function<bool()>& peerGone, Deadline deadline);
  // Unblocks every pending operation (ncclCommAbort); the link is unusable afterwards. Any
  // thread may call it: the NCCL calls of send / receive / wait hold a lock it takes too (for at
  // most a second: a call stuck inside NCCL is what the abort is for).
  void abort();

 private:
  void check(nccl::Result result, const char* call);
  // Held around every call into the communicator; throws once the link is aborted.
  std::unique_lock<std::timed_mutex> use();

  const nccl::Api* api_;
  int ordinal_;
  int peer_;
  nccl::Comm comm_ = nullptr;
  std::atomic<bool> aborted_{false};
  std::timed_mutex commMutex_;
  device::CopyMode mode_;
  device::Stream copyStream_;
  device::Stream commStream_;
  std::unique_ptr<device::DeviceBuffer> buffers_[2];
  std::unique_ptr<device::Event> copied_[2];  // gather into / scatter out of the buffer finished
  std::unique_ptr<device::Event> moved_[2];   // send from / receive into the buffer finished
  bool used_[2] = {false, false};
  device::Event done_;
};

}  // namespace kvt
