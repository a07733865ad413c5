// The sender implementations connect() builds (not part of the public seam).
#pragma once

#include <memory>
#include <vector>

#include "staging.h"
#include "transport.h"
#include "wire.h"

namespace kvt {

// Throws OutOfBounds unless every range fits both regions; returns the total bytes.
uint64_t checkRanges(const std::vector<Range>& ranges, uint64_t localBytes, uint64_t remoteBytes);

// TCP: the handshaken streams (the first one first). A GPU pool is staged (staging.h).
std::unique_ptr<Sender> makeTcpSender(std::vector<int> fds, Region region, uint32_t remoteNumPages,
                                      uint64_t remoteRegionBytes);

// How bytes move for a transport with one control connection (cuda_ipc, nccl, rdma).
class Mover {
 public:
  virtual ~Mover() = default;
  virtual TransportKind kind() const = 0;
  // One-sided: the sender's writes land by themselves (grants, Written); else the receiver lands
  // them and acknowledges a Flush or Commit (nccl).
  virtual bool oneSided() const = 0;
  // Called in send() on the caller's thread: the op's copies wait for this recording.
  virtual std::shared_ptr<DeviceFence> fence(uint64_t foreignEvent) = 0;
  // Two-sided (nccl): the control bytes that announce a send, written before its data starts:
  // the ranges, then the Flush or Commit (with the transfer's declared total) the receiver
  // answers once those bytes landed.
  virtual std::vector<uint8_t> announce(uint64_t /*transferId*/, const std::vector<Range>& /*ranges*/, bool /*commit*/,
                                        uint64_t /*declared*/) {
    return {};
  }
  // Starts the op's copies (on a transport thread); returns a ticket for wait().
  virtual uint64_t submit(const std::vector<Range>& ranges, const DeviceFence* after) = 0;
  // Blocks until the ticket's copies finished; peerGone() and the deadline bound waits that
  // depend on the peer. Throws on failure.
  virtual void wait(uint64_t ticket, const std::function<bool()>& peerGone, Deadline deadline) = 0;
  // Unblocks waits that depend on the peer (nccl: aborts the communicator).
  virtual void abort() {}
};

std::unique_ptr<Sender> makeControlSender(int fd, Region region, uint32_t remoteNumPages, uint64_t remoteRegionBytes,
                                          std::unique_ptr<Mover> mover);

// cuda_ipc: copies into the receiver's pool at remoteBase (mapped, or the same process's pointer).
std::unique_ptr<Mover> makeIpcMover(const Region& local, uint8_t* remoteBase, std::shared_ptr<void> keepAlive);
class NcclLink;
std::unique_ptr<Mover> makeNcclMover(const Region& local, std::unique_ptr<NcclLink> link);
namespace rdma {
class Endpoint;
}
std::unique_ptr<Mover> makeRdmaMover(const Region& local, std::unique_ptr<rdma::Endpoint> endpoint);

}  // namespace kvt
