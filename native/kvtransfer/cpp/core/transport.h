// The transfer engine's seam: a Sender pushes byte ranges of its registered memory into a
// Receiver's registered memory. One Receiver serves every transport; a Sender is one of:
//   tcp       N parallel streams of Data frames (tcp_sender.cc); a device pool is staged through
//             pinned host buffers on the side that has it (staging.h)
//   cuda_ipc  one-sided device-to-device copies into the receiver's pool mapped with
//             cudaIpcOpenMemHandle (control_sender.cc + cuda/ipc_mover)
//   nccl      ncclSend / ncclRecv on a communicator per sender/receiver pair (nccl_mover)
//   rdma      one-sided RDMA WRITE of page runs (rdma.h)
// The choice is made per pair in connect() (choice.h) and reported. Callbacks run on transport
// threads.
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

// Same numbers on the wire (Select.offset).
enum class TransportKind : uint32_t { Tcp = 0, CudaIpc = 1, Nccl = 2, Rdma = 3 };
const char* transportName(TransportKind kind);  // "tcp" | "cuda_ipc" | "nccl" | "rdma"

// What connect() may use: Auto picks the best both sides support; the others force one.
enum class TransportPreference { Auto, Tcp, CudaIpc, Nccl, Rdma };
// Parses "auto" | "tcp" | "cuda_ipc" | "nccl" | "rdma"; throws std::invalid_argument otherwise.
TransportPreference parseTransportPreference(const std::string& name);

// Copy `length` bytes from the sender's region at srcOffset to the receiver's at dstOffset.
struct Range {
  uint64_t srcOffset;
  uint64_t dstOffset;
  uint64_t length;
};

struct ReceiverEvent {
  // Released: a released transfer has no write landing any more (its pages may be reused).
  enum class Type { Completed, Failed, Rejected, Released };
  Type type;
  uint64_t transferId = 0;  // 0 for Rejected (no transfer yet)
  uint64_t bytes = 0;       // bytes that landed for this transfer
  ErrorCode code = ErrorCode::Io;
  std::string message;
  TransportKind transport = TransportKind::Tcp;  // the connection that carried (or lost) the bytes
};
using ReceiverListener = std::function<void(ReceiverEvent)>;

// One transport a receiver offers, or why not.
struct Offer {
  bool ok = false;
  std::string reason;
};
struct ReceiverCapabilities {
  std::string hostId;
  int device = kHostDevice;
  Offer cudaIpc, nccl, rdma;  // tcp is always offered
};

class Receiver {
 public:
  virtual ~Receiver() = default;
  virtual uint16_t port() const = 0;
  // Only expected transfers land: Data frames of any other id are read and dropped, one-sided
  // writers get no grant, and the sender's flush or commit fails with Aborted. Call before the
  // sender starts.
  virtual void expect(uint64_t transferId) = 0;
  // Stops accepting writes of the transfer. True when none is landing now; else a Released event
  // follows once the frame in flight has landed and every one-sided writer confirmed it stopped.
  // After that its pages may be reused safely. Never blocks.
  virtual bool release(uint64_t transferId) = 0;
  // Bytes landed so far for a transfer still open (0 once completed, failed or unknown).
  virtual uint64_t bytesReceived(uint64_t transferId) const = 0;
  // What this receiver offers senders (sent in every handshake reply).
  virtual ReceiverCapabilities capabilities() const = 0;
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
  virtual TransportKind transport() const = 0;
  // Queues the ranges; `done` runs when all landed (and, with commit, the receiver confirmed the
  // transfer's total), or on the first failure. Throws OutOfBounds / Closed synchronously.
  // afterEvent: a cudaEvent_t (0 for none) the copies wait for on the device (a device pool's
  // layer written by the executor); waited for at this call, so it may be re-recorded after it.
  virtual void send(uint64_t transferId, std::vector<Range> ranges, bool commit, Deadline deadline,
                    uint64_t afterEvent, SendDone done) = 0;
  // One-sided transports: asks for the transfer's grant now, so its first send finds it (saves
  // that send one control round trip); never waits. No-op for tcp and nccl.
  virtual void prepare(uint64_t /*transferId*/) {}
  // Tells the receiver to drop the transfer (fire and forget, ordered after queued sends: on
  // one-sided transports it goes out once their writes finished).
  virtual void abort(uint64_t transferId) = 0;
  // Fails queued sends with Closed and joins every thread.
  virtual void close() = 0;
};

struct ListenOptions {
  std::string host;
  uint16_t port = 0;
  KvSpec spec;
  Region region;
  int64_t ioTimeoutMs = 10'000;
};
std::unique_ptr<Receiver> listen(const ListenOptions& options, ReceiverListener listener);

struct ConnectOptions {
  std::string host;
  uint16_t port = 0;
  uint32_t numStreams = 2;  // TCP only; the other transports use one control connection
  KvSpec spec;
  Region region;
  TransportPreference transport = TransportPreference::Auto;
};
// The transport connect() chose and why (the candidates tried before it and what stopped them).
struct Connected {
  std::unique_ptr<Sender> sender;
  std::string reason;
};
Connected connect(const ConnectOptions& options, Deadline deadline);

}  // namespace kvt
