// The transfer engine's seam: a Sender pushes byte ranges of its registered memory into a
// Receiver's registered memory. TCP implements it now (tcp_sender / tcp_receiver); CUDA IPC and
// NCCL implement the same two interfaces later. Callbacks run on transport threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "errors.h"
#include "socket_io.h"
#include "spec.h"

namespace kvt {

// Copy `length` bytes from the sender's region at srcOffset to the receiver's at dstOffset.
struct Range {
  uint64_t srcOffset;
  uint64_t dstOffset;
  uint64_t length;
};

struct ReceiverEvent {
  // Released: a released transfer has no frame landing any more (its pages may be reused).
  enum class Type { Completed, Failed, Rejected, Released };
  Type type;
  uint64_t transferId = 0;  // 0 for Rejected (no transfer yet)
  uint64_t bytes = 0;       // bytes that landed for this transfer
  ErrorCode code = ErrorCode::Io;
  std::string message;
};
using ReceiverListener = std::function<void(ReceiverEvent)>;

class Receiver {
 public:
  virtual ~Receiver() = default;
  virtual uint16_t port() const = 0;
  // Only expected transfers land: Data frames of any other id are read and dropped, and the
  // sender's flush or commit fails with Aborted. Call before the sender starts.
  virtual void expect(uint64_t transferId) = 0;
  // Stops accepting frames of the transfer. True when none is landing now; else a Released event
  // follows once the frame in flight has landed. After that its pages may be reused safely.
  virtual bool release(uint64_t transferId) = 0;
  // Bytes landed so far for a transfer still open (0 once completed, failed or unknown).
  virtual uint64_t bytesReceived(uint64_t transferId) const = 0;
  // Stops accepting, drops every connection, joins every thread; no callback runs after it.
  virtual void close() = 0;
};

// Called once per send: error empty on success; bytes written by this send.
using SendDone = std::function<void(std::optional<KvtError> error, uint64_t bytes)>;

class Sender {
 public:
  virtual ~Sender() = default;
  virtual uint32_t remoteNumPages() const = 0;
  virtual uint64_t remoteRegionBytes() const = 0;
  // Queues the ranges; `done` runs when all landed (and, with commit, the receiver confirmed the
  // transfer's total), or on the first failure. Throws OutOfBounds / Closed synchronously.
  virtual void send(uint64_t transferId, std::vector<Range> ranges, bool commit, Deadline deadline,
                    SendDone done) = 0;
  // Tells the receiver to drop the transfer (fire and forget, ordered after queued sends).
  virtual void abort(uint64_t transferId) = 0;
  // Fails queued sends with Closed and joins every thread.
  virtual void close() = 0;
};

std::unique_ptr<Receiver> listenTcp(const std::string& host, uint16_t port, const KvSpec& spec, Region region,
                                    int64_t ioTimeoutMs, ReceiverListener listener);
std::unique_ptr<Sender> connectTcp(const std::string& host, uint16_t port, uint32_t numStreams,
                                   const KvSpec& spec, Region region, Deadline deadline);

}  // namespace kvt
