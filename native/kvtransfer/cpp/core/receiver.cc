// The receiver: one accept thread, one thread per connection, every transport. A connection is a
// TCP stream until its sender selects another transport on it (wire.h):
//   tcp       Data frames land straight in a host pool, or through pinned staging in a GPU pool
//             (counted only once their device copy finished)
//   cuda_ipc  / rdma: the sender writes the pool itself; this side grants transfers (Begin ->
//             Grant), counts Written bytes, revokes grants on release (Release -> ReleaseAck)
//   nccl      NcclData announcements whose chunks arrive through the pair's communicator
// Transfers are tracked across connections and reported once committed, aborted or broken; each
// event names the transport of the connection that carried it.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <list>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "choice.h"
#include "device.h"
#include "nccl_api.h"
#include "nccl_link.h"
#include "plan.h"
#include "rdma.h"
#include "staging.h"
#include "transport.h"
#include "wire.h"

namespace kvt {
namespace {

void copyText(char* out, size_t size, const std::string& text) {
  std::memset(out, 0, size);
  std::memcpy(out, text.data(), std::min(text.size(), size - 1));
}

std::string readText(const char* text, size_t size) { return std::string(text, strnlen(text, size)); }

// What this receiver offers, probed once at listen (the handshake reply carries it).
wire::Capabilities probeCapabilities(const Region& region) {
  wire::Capabilities caps = {};
  copyText(caps.hostId, sizeof caps.hostId, hostIdentity());
  caps.pid = uint32_t(::getpid());
  caps.baseAddress = reinterpret_cast<uint64_t>(region.base);
  if (!region.onDevice()) {
    caps.deviceKind = wire::kDeviceHost;
    const char* hostPool = "the receiver's pool is in host memory";
    copyText(caps.ipcReason, sizeof caps.ipcReason, hostPool);
    copyText(caps.ncclReason, sizeof caps.ncclReason, hostPool);
    copyText(caps.rdmaReason, sizeof caps.rdmaReason, hostPool);
    return caps;
  }
  caps.deviceKind = wire::kDeviceCuda;
  caps.deviceOrdinal = region.device;
  std::memcpy(caps.deviceUuid, device::deviceUuid(region.device).bytes, 16);
  device::IpcExport exported = device::exportPool(region);
  if (exported.ok) {
    caps.flags |= wire::kCapCudaIpc;
    std::memcpy(caps.ipcHandle, exported.handle, 64);
    caps.ipcOffset = exported.offset;
  } else {
    copyText(caps.ipcReason, sizeof caps.ipcReason, exported.reason);
  }
  std::string why;
  if (nccl::load(&why) != nullptr) caps.flags |= wire::kCapNccl;
  else copyText(caps.ncclReason, sizeof caps.ncclReason, why);
  rdma::Probe rdmaProbe = rdma::probe();
  std::string problem = rdmaProbe.ok ? rdma::registrationProblem(region) : rdmaProbe.reason;
  if (problem.empty()) {
    caps.flags |= wire::kCapRdma;
    copyText(caps.rdmaDevice, sizeof caps.rdmaDevice, rdmaProbe.device);
  } else {
    copyText(caps.rdmaReason, sizeof caps.rdmaReason, problem);
  }
  return caps;
}

class ReceiverImpl final : public Receiver {
 public:
  ReceiverImpl(int listenFd, uint16_t port, const ListenOptions& options, ReceiverListener listener)
      : listenFd_(listenFd), port_(port), spec_(options.spec), region_(options.region),
        ioTimeoutMs_(options.ioTimeoutMs), caps_(probeCapabilities(options.region)), listener_(std::move(listener)) {
    if (::pipe2(wakePipe_, O_CLOEXEC) != 0) throw KvtError(ErrorCode::Io, "pipe2 failed");
    acceptThread_ = std::thread([this] { acceptLoop(); });
  }
  ~ReceiverImpl() override { close(); }

  uint16_t port() const override { return port_; }

  ReceiverCapabilities capabilities() const override {
    ReceiverCapabilities out;
    out.hostId = readText(caps_.hostId, sizeof caps_.hostId);
    out.device = region_.device;
    out.cudaIpc = {(caps_.flags & wire::kCapCudaIpc) != 0, readText(caps_.ipcReason, sizeof caps_.ipcReason)};
    out.nccl = {(caps_.flags & wire::kCapNccl) != 0, readText(caps_.ncclReason, sizeof caps_.ncclReason)};
    out.rdma = {(caps_.flags & wire::kCapRdma) != 0, readText(caps_.rdmaReason, sizeof caps_.rdmaReason)};
    return out;
  }

  uint64_t bytesReceived(uint64_t transferId) const override {
    std::lock_guard lock(mutex_);
    auto it = transfers_.find(transferId);
    return it == transfers_.end() ? 0 : it->second.bytes;
  }

  void expect(uint64_t transferId) override {
    std::lock_guard lock(mutex_);
    transfers_.try_emplace(transferId);
  }

  bool release(uint64_t transferId) override {
    std::lock_guard lock(mutex_);
    auto it = transfers_.find(transferId);
    if (it == transfers_.end()) return true;
    if (quiet(it->second)) {
      transfers_.erase(it);
      return true;
    }
    markReleased(transferId, it->second);
    return false;
  }

  void close() override {
    if (closed_.exchange(true)) return;
    char byte = 1;
    (void)!::write(wakePipe_[1], &byte, 1);
    if (acceptThread_.joinable()) acceptThread_.join();
    {
      std::lock_guard lock(mutex_);
      for (auto& conn : connections_) ::shutdown(conn.fd, SHUT_RDWR);
    }
    for (auto& conn : connections_) conn.thread.join();
    for (auto& conn : connections_) ::close(conn.fd);
    connections_.clear();
    ::close(listenFd_);
    ::close(wakePipe_[0]);
    ::close(wakePipe_[1]);
  }

 private:
  struct Connection {
    int fd;
    std::thread thread;
    std::mutex writeMutex;  // frames to the sender come from its serve thread and from release()
    std::atomic<TransportKind> kind{TransportKind::Tcp};
  };

  struct TransferState {
    uint64_t bytes = 0;              // landed so far
    int inflightFrames = 0;          // frames / announcements being landed right now
    bool released = false;           // nothing new lands; erased once quiet
    std::set<Connection*> writers;   // one-sided senders holding a grant
    Clock::time_point releasedAt;    // writers that do not confirm within ioTimeoutMs are cut off
  };
  static bool quiet(const TransferState& t) { return t.inflightFrames == 0 && t.writers.empty(); }

  // What one connection's thread keeps.
  struct ServeState {
    std::set<uint64_t> touched;                          // transfers it landed bytes of, or granted
    std::unordered_map<uint64_t, uint64_t> streamBytes;  // transfer -> bytes landed via it since its last flush
    std::set<uint64_t> discarded;                        // transfers whose frames it dropped
    std::unique_ptr<ReceiveStaging> staging;             // tcp into a GPU pool
    std::unique_ptr<NcclLink> nccl;
    std::unique_ptr<rdma::Endpoint> rdma;
    bool selected = false;
  };

  void acceptLoop() {
    for (;;) {
      struct pollfd fds[2] = {{listenFd_, POLLIN, 0}, {wakePipe_[0], POLLIN, 0}};
      int rc = ::poll(fds, 2, 200);
      if (closed_) return;
      cutOffSilentWriters();
      if (rc <= 0) continue;
      if (!(fds[0].revents & POLLIN)) continue;
      int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      tuneSocket(fd);
      std::lock_guard lock(mutex_);
      if (closed_) {
        ::close(fd);
        return;
      }
      reapFinished();
      Connection& conn = connections_.emplace_back();
      conn.fd = fd;
      conn.thread = std::thread([this, &conn] { serve(conn); });
    }
  }

  // Nothing new of the transfer lands. One-sided writers stop on Release and answer once none of
  // their writes is in flight. The frame is tiny and the socket buffer large: it goes out at
  // once; if not, the connection is dropped, which ends that writer too (its serve thread then
  // counts it gone). Called with mutex_ held.
  void markReleased(uint64_t transferId, TransferState& transfer) {
    transfer.released = true;
    transfer.releasedAt = Clock::now();
    wire::FrameHeader frame = {wire::FrameType::Release, 0, transferId, 0, 0};
    for (Connection* writer : transfer.writers) {
      std::lock_guard writeLock(writer->writeMutex);
      if (!sendNow(writer->fd, &frame, sizeof frame)) ::shutdown(writer->fd, SHUT_RDWR);
    }
  }

  // A one-sided writer that has not confirmed a release within ioTimeoutMs loses its connection
  // (its serve thread then counts it gone), so release() never waits forever on a stuck sender.
  void cutOffSilentWriters() {
    const auto limit = Clock::now() - std::chrono::milliseconds(ioTimeoutMs_);
    std::lock_guard lock(mutex_);
    for (auto& [id, transfer] : transfers_)
      if (transfer.released && !transfer.writers.empty() && transfer.releasedAt < limit)
        for (Connection* writer : transfer.writers) ::shutdown(writer->fd, SHUT_RDWR);
  }

  void emit(ReceiverEvent event) {
    if (!closed_) listener_(std::move(event));
  }

  void sendFrame(Connection& conn, const wire::FrameHeader& frame, const void* payload = nullptr, size_t bytes = 0) {
    std::lock_guard lock(conn.writeMutex);
    Deadline deadline = Deadline::in(ioTimeoutMs_);
    sendAll(conn.fd, &frame, sizeof frame, deadline);
    if (bytes > 0) sendAll(conn.fd, payload, bytes, deadline);
  }

  // Runs one connection to its end; every transfer it touched and left open fails with it.
  void serve(Connection& conn) {
    ServeState state;
    ErrorCode code = ErrorCode::PeerClosed;
    std::string message = "sender closed the connection";
    try {
      if (handshake(conn)) {
        for (;;) {
          wire::FrameHeader header;
          if (!recvAll(conn.fd, &header, sizeof header, Deadline::never())) break;  // clean end
          handleFrame(conn, state, header);
        }
      }
    } catch (const KvtError& error) {
      code = error.code();
      message = error.what();
    }
    if (state.staging) {
      try {
        applySettled(state, state.staging->drain());
      } catch (const KvtError&) {
      }
    }
    if (state.nccl) state.nccl->abort();
    failOpen(conn, state.touched, code, message);
    dropWriter(conn);
    ::shutdown(conn.fd, SHUT_RDWR);
    std::lock_guard lock(mutex_);
    finished_.push_back(&conn);
  }

  // Joins and closes connections whose thread has ended (called with mutex_ held).
  void reapFinished() {
    for (Connection* done : finished_) {
      for (auto it = connections_.begin(); it != connections_.end(); ++it) {
        if (&*it != done) continue;
        it->thread.join();
        ::close(it->fd);
        connections_.erase(it);
        break;
      }
    }
    finished_.clear();
  }

  bool handshake(Connection& conn) {
    wire::Hello hello;
    Deadline deadline = Deadline::in(ioTimeoutMs_);
    if (!recvAll(conn.fd, &hello, sizeof hello, deadline)) return false;
    wire::HelloReply reply = {};
    reply.magic = wire::kMagic;
    reply.numPages = spec_.numPages;
    reply.regionBytes = region_.length;
    reply.caps = caps_;
    std::string reason;
    if (hello.magic != wire::kMagic || hello.version != wire::kVersion) {
      reply.status = wire::HelloStatus::BadVersion;
      reason = "protocol version: receiver speaks " + std::to_string(wire::kVersion) + ", sender " +
               std::to_string(hello.version);
    } else {
      KvSpec remote;
      remote.model = readText(hello.model, sizeof hello.model);
      remote.dtype = readText(hello.dtype, sizeof hello.dtype);
      remote.numLayers = hello.numLayers;
      remote.numKvHeads = hello.numKvHeads;
      remote.headDim = hello.headDim;
      remote.pageSize = hello.pageSize;
      reason = describeMismatch(spec_, remote);
      reply.status = reason.empty() ? wire::HelloStatus::Ok : wire::HelloStatus::Mismatch;
    }
    copyText(reply.reason, sizeof reply.reason, reason);
    sendAll(conn.fd, &reply, sizeof reply, deadline);
    if (reply.status == wire::HelloStatus::Ok) return true;
    emit({ReceiverEvent::Type::Rejected, 0, 0, ErrorCode::HandshakeMismatch, reason, TransportKind::Tcp});
    return false;
  }

  bool oneSided(const Connection& conn) const {
    TransportKind kind = conn.kind;
    return kind == TransportKind::CudaIpc || kind == TransportKind::Rdma;
  }

  void checkBounds(uint64_t offset, uint64_t length, const char* what) const {
    if (length > region_.length || offset > region_.length - length)
      throw KvtError(ErrorCode::OutOfBounds, std::string(what) + " [" + std::to_string(offset) + ", +" +
                                                 std::to_string(length) + ") outside the region of " +
                                                 std::to_string(region_.length) + " bytes");
  }

  // Takes a new frame (or announcement) of the transfer in: true when it may land.
  bool admit(uint64_t transferId) {
    std::lock_guard lock(mutex_);
    auto it = transfers_.find(transferId);
    if (it == transfers_.end() || it->second.released) return false;
    it->second.inflightFrames++;
    return true;
  }

  void handleFrame(Connection& conn, ServeState& state, const wire::FrameHeader& header) {
    Deadline deadline = Deadline::in(ioTimeoutMs_);
    const uint64_t id = header.transferId;
    if (header.type != wire::FrameType::Select) state.selected = true;  // Select only comes first
    switch (header.type) {
      case wire::FrameType::Data: {
        if (conn.kind != TransportKind::Tcp) throw KvtError(ErrorCode::Protocol, "Data frame on a non-TCP connection");
        checkBounds(header.offset, header.length, "data frame");
        if (!admit(id)) {  // not expected (or released): read and drop, never touch the region
          state.discarded.insert(id);
          discard(conn.fd, header.length, deadline);
          return;
        }
        state.touched.insert(id);
        if (region_.onDevice()) landStaged(conn, state, header, deadline);
        else landDirect(conn, state, header, deadline);
        return;
      }
      case wire::FrameType::Flush: {
        if (state.staging) applySettled(state, state.staging->drain());
        wire::FrameHeader ack = {wire::FrameType::FlushAck, 0, id, wire::kAckOk, 0};
        if (state.discarded.erase(id) > 0) ack.offset = wire::kAckNotExpected;
        if (auto it = state.streamBytes.find(id); it != state.streamBytes.end()) {
          ack.length = it->second;
          state.streamBytes.erase(it);
        }
        sendFrame(conn, ack);
        return;
      }
      case wire::FrameType::Commit: {
        if (state.staging) applySettled(state, state.staging->drain());
        uint64_t counted = 0;
        bool known = false;
        {
          std::lock_guard lock(mutex_);
          auto it = transfers_.find(id);
          if (it != transfers_.end() && !it->second.released) {
            known = true;
            counted = it->second.bytes;
            transfers_.erase(it);  // every byte of it has landed: the sender flushed (or finished) them all
          }
        }
        state.touched.erase(id);
        state.streamBytes.erase(id);
        bool discardedHere = state.discarded.erase(id) > 0;
        uint64_t status = !known || discardedHere ? wire::kAckNotExpected
                          : counted == header.length ? wire::kAckOk
                                                     : wire::kAckCountMismatch;
        sendFrame(conn, {wire::FrameType::CommitAck, 0, id, status, counted});
        if (status == wire::kAckOk)
          emit({ReceiverEvent::Type::Completed, id, counted, ErrorCode::Io, "", conn.kind});
        else if (status == wire::kAckCountMismatch)
          emit({ReceiverEvent::Type::Failed, id, counted, ErrorCode::CommitMismatch,
                "received " + std::to_string(counted) + " bytes, sender declared " + std::to_string(header.length),
                conn.kind});
        return;
      }
      case wire::FrameType::Abort: {
        if (state.staging) applySettled(state, state.staging->drain());
        uint64_t counted = 0;
        bool known = false;
        bool nowQuiet = false;
        {
          std::lock_guard lock(mutex_);
          auto it = transfers_.find(id);
          if (it != transfers_.end()) {
            it->second.writers.erase(&conn);  // a one-sided sender aborts after its writes finished
            if (!it->second.released) {
              counted = it->second.bytes;
              known = true;
              markReleased(id, it->second);
            }
            if (quiet(it->second)) {
              nowQuiet = !known;  // a release() was waiting for this writer
              transfers_.erase(it);
            }
          }
        }
        state.touched.erase(id);
        state.streamBytes.erase(id);
        state.discarded.erase(id);
        if (known)
          emit({ReceiverEvent::Type::Failed, id, counted, ErrorCode::Aborted, "sender aborted the transfer", conn.kind});
        if (nowQuiet) emit({ReceiverEvent::Type::Released, id, 0, ErrorCode::Io, "", conn.kind});
        return;
      }
      case wire::FrameType::Select:
        select(conn, state, header, deadline);
        return;
      case wire::FrameType::Begin: {
        if (!oneSided(conn)) throw KvtError(ErrorCode::Protocol, "Begin on a connection that does not write one-sided");
        bool granted = false;
        {
          std::lock_guard lock(mutex_);
          auto it = transfers_.find(id);
          if (it != transfers_.end() && !it->second.released) {
            it->second.writers.insert(&conn);
            granted = true;
          }
        }
        if (granted) state.touched.insert(id);
        sendFrame(conn, {wire::FrameType::Grant, 0, id, granted ? wire::kAckOk : wire::kAckNotExpected, 0});
        return;
      }
      case wire::FrameType::Written: {
        if (!oneSided(conn)) throw KvtError(ErrorCode::Protocol, "Written on a connection that does not write one-sided");
        std::lock_guard lock(mutex_);
        auto it = transfers_.find(id);
        if (it != transfers_.end() && !it->second.released && it->second.writers.count(&conn) > 0)
          it->second.bytes += header.length;
        else
          state.discarded.insert(id);
        return;
      }
      case wire::FrameType::ReleaseAck: {
        bool nowQuiet = false;
        {
          std::lock_guard lock(mutex_);
          auto it = transfers_.find(id);
          if (it != transfers_.end()) {
            it->second.writers.erase(&conn);
            if (it->second.released && quiet(it->second)) {
              transfers_.erase(it);
              nowQuiet = true;
            }
          }
        }
        state.touched.erase(id);
        if (nowQuiet) emit({ReceiverEvent::Type::Released, id, 0, ErrorCode::Io, "", conn.kind});
        return;
      }
      case wire::FrameType::NcclData:
        landNccl(conn, state, header, deadline);
        return;
      default:
        throw KvtError(ErrorCode::Protocol, "unexpected frame type " + std::to_string(uint32_t(header.type)));
    }
  }

  // The sender's transport choice, first frame of its first connection.
  void select(Connection& conn, ServeState& state, const wire::FrameHeader& header, Deadline deadline) {
    if (state.selected) throw KvtError(ErrorCode::Protocol, "Select after other frames");
    state.selected = true;
    const auto kind = TransportKind(uint32_t(header.offset));
    auto refuse = [&](const std::string& reason) {
      sendFrame(conn, {wire::FrameType::SelectAck, 0, 0, 1, reason.size()}, reason.data(), reason.size());
      throw KvtError(ErrorCode::TransportUnavailable, std::string(transportName(kind)) + " refused: " + reason);
    };
    auto payload = [&](void* out, size_t bytes) {
      if (header.length != bytes) throw KvtError(ErrorCode::Protocol, "Select payload of the wrong size");
      if (!recvAll(conn.fd, out, bytes, deadline)) throw KvtError(ErrorCode::PeerClosed, "sender left mid-Select");
    };
    switch (kind) {
      case TransportKind::Tcp:
        sendFrame(conn, {wire::FrameType::SelectAck, 0, 0, 0, 0});
        return;
      case TransportKind::CudaIpc:
        if (!(caps_.flags & wire::kCapCudaIpc)) refuse(readText(caps_.ipcReason, sizeof caps_.ipcReason));
        conn.kind = kind;
        sendFrame(conn, {wire::FrameType::SelectAck, 0, 0, 0, 0});
        return;
      case TransportKind::Nccl: {
        nccl::UniqueId id;
        payload(&id, sizeof id);
        if (!(caps_.flags & wire::kCapNccl)) refuse(readText(caps_.ncclReason, sizeof caps_.ncclReason));
        conn.kind = kind;
        // Ack first: the sender joins the communicator once it knows this side does too.
        sendFrame(conn, {wire::FrameType::SelectAck, 0, 0, 0, 0});
        state.nccl = std::make_unique<NcclLink>(region_.device, id, 1);
        return;
      }
      case TransportKind::Rdma: {
        wire::RdmaEndpoint remote;
        payload(&remote, sizeof remote);
        if (!(caps_.flags & wire::kCapRdma)) refuse(readText(caps_.rdmaReason, sizeof caps_.rdmaReason));
        try {
          state.rdma = std::make_unique<rdma::Endpoint>(readText(caps_.rdmaDevice, sizeof caps_.rdmaDevice), region_);
          state.rdma->connect(remote);
        } catch (const KvtError& error) {
          refuse(error.what());
        }
        conn.kind = kind;
        wire::RdmaEndpoint local = state.rdma->local();
        sendFrame(conn, {wire::FrameType::SelectAck, 0, 0, 0, sizeof local}, &local, sizeof local);
        return;
      }
    }
    refuse("unknown transport " + std::to_string(header.offset));
  }

  void landDirect(Connection& conn, ServeState& state, const wire::FrameHeader& header, Deadline deadline) {
    bool landed = false;
    try {
      landed = recvAll(conn.fd, region_.base + header.offset, header.length, deadline);
    } catch (...) {
      land(header.transferId, 0, 1);
      throw;
    }
    land(header.transferId, landed ? header.length : 0, 1);
    if (!landed) throw KvtError(ErrorCode::PeerClosed, "sender closed the connection mid-frame");
    state.streamBytes[header.transferId] += header.length;
  }

  // A frame into a GPU pool: received piecewise into pinned buffers, copied to the pool on the
  // transport's stream; it counts once its copy finished (applySettled).
  void landStaged(Connection& conn, ServeState& state, const wire::FrameHeader& header, Deadline deadline) {
    if (!state.staging) state.staging = std::make_unique<ReceiveStaging>(region_);
    uint64_t remaining = header.length;
    uint64_t offset = header.offset;
    std::vector<LandingLedger::Settled> settled;
    try {
      while (remaining > 0) {
        uint64_t granted = 0;
        uint8_t* host = state.staging->reserve(remaining, &granted, settled);
        if (!recvAll(conn.fd, host, granted, deadline))
          throw KvtError(ErrorCode::PeerClosed, "sender closed the connection mid-frame");
        state.staging->staged(offset, granted, header.transferId, granted == remaining);
        offset += granted;
        remaining -= granted;
      }
    } catch (...) {
      applySettled(state, settled);
      try {
        applySettled(state, state.staging->drain());
      } catch (const KvtError&) {
      }
      if (remaining > 0) land(header.transferId, 0, 1);  // the frame never reached its end
      throw;
    }
    applySettled(state, settled);
  }

  void applySettled(ServeState& state, const std::vector<LandingLedger::Settled>& settled) {
    for (const LandingLedger::Settled& s : settled) {
      land(s.transferId, s.bytes, s.framesEnded);
      state.streamBytes[s.transferId] += s.bytes;
    }
  }

  // An announcement: its ranges, then its bytes through NCCL (received and dropped when the
  // transfer is not expected, so the sender never hangs).
  void landNccl(Connection& conn, ServeState& state, const wire::FrameHeader& header, Deadline deadline) {
    if (!state.nccl) throw KvtError(ErrorCode::Protocol, "NcclData before the NCCL transport was selected");
    if (header.offset > wire::kMaxNcclRanges) throw KvtError(ErrorCode::Protocol, "too many ranges in NcclData");
    std::vector<uint64_t> pairs(2 * header.offset);
    if (!recvAll(conn.fd, pairs.data(), pairs.size() * sizeof(uint64_t), deadline))
      throw KvtError(ErrorCode::PeerClosed, "sender closed the connection mid-announcement");
    const std::vector<Range> ranges = rangesFromPairs(pairs.data(), header.offset);
    uint64_t total = 0;
    for (const Range& r : ranges) {
      checkBounds(r.dstOffset, r.length, "NCCL range");
      total += r.length;
    }
    if (total != header.length) throw KvtError(ErrorCode::Protocol, "NcclData ranges disagree with its byte count");
    const uint64_t id = header.transferId;
    const bool accepted = admit(id);
    if (accepted) state.touched.insert(id);
    else state.discarded.insert(id);
    const int fd = conn.fd;
    try {
      state.nccl->receive(ranges, region_.base, accepted);
      state.nccl->wait([fd] { return peerHungUp(fd); }, Deadline::in(ioTimeoutMs_));
    } catch (...) {
      if (accepted) land(id, 0, 1, TransportKind::Nccl);
      throw;
    }
    if (!accepted) return;
    land(id, total, 1, TransportKind::Nccl);
    state.streamBytes[id] += total;
  }

  // Bytes of a transfer landed and `framesEnded` of its frames finished; a released transfer
  // that is now quiet goes away (Released).
  void land(uint64_t transferId, uint64_t bytes, int framesEnded, TransportKind kind = TransportKind::Tcp) {
    bool nowQuiet = false;
    {
      std::lock_guard lock(mutex_);
      auto it = transfers_.find(transferId);
      if (it == transfers_.end()) return;
      it->second.inflightFrames -= framesEnded;
      it->second.bytes += bytes;
      if (it->second.released && quiet(it->second)) {
        transfers_.erase(it);
        nowQuiet = true;
      }
    }
    if (nowQuiet) emit({ReceiverEvent::Type::Released, transferId, 0, ErrorCode::Io, "", kind});
  }

  void failOpen(Connection& conn, const std::set<uint64_t>& touched, ErrorCode code, const std::string& message) {
    for (uint64_t transferId : touched) {
      uint64_t counted = 0;
      {
        std::lock_guard lock(mutex_);
        auto it = transfers_.find(transferId);
        if (it == transfers_.end() || it->second.released) continue;  // done through another stream
        counted = it->second.bytes;
        it->second.writers.erase(&conn);
        if (quiet(it->second)) transfers_.erase(it);
        else markReleased(transferId, it->second);
      }
      emit({ReceiverEvent::Type::Failed, transferId, counted, code, message, conn.kind});
    }
  }

  // A one-sided sender is gone: none of its writes lands any more (its process ended or it
  // closed the connection after its copies finished).
  void dropWriter(Connection& conn) {
    std::vector<uint64_t> nowQuiet;
    {
      std::lock_guard lock(mutex_);
      for (auto it = transfers_.begin(); it != transfers_.end();) {
        if (it->second.writers.erase(&conn) > 0 && it->second.released && quiet(it->second)) {
          nowQuiet.push_back(it->first);
          it = transfers_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (uint64_t id : nowQuiet) emit({ReceiverEvent::Type::Released, id, 0, ErrorCode::Io, "", conn.kind});
  }

  static void discard(int fd, uint64_t length, Deadline deadline) {
    static thread_local std::vector<uint8_t> scratch(1 << 16);
    while (length > 0) {
      uint64_t n = std::min<uint64_t>(length, scratch.size());
      if (!recvAll(fd, scratch.data(), n, deadline))
        throw KvtError(ErrorCode::PeerClosed, "sender closed the connection mid-frame");
      length -= n;
    }
  }

  int listenFd_;
  uint16_t port_;
  KvSpec spec_;
  Region region_;
  int64_t ioTimeoutMs_;
  wire::Capabilities caps_;
  ReceiverListener listener_;
  int wakePipe_[2] = {-1, -1};
  std::atomic<bool> closed_{false};
  std::thread acceptThread_;
  mutable std::mutex mutex_;
  std::list<Connection> connections_;                      // guarded by mutex_ until close
  std::unordered_map<uint64_t, TransferState> transfers_;  // expected transfers
  std::vector<Connection*> finished_;                      // connections whose thread ended, to reap
};

}  // namespace

std::unique_ptr<Receiver> listen(const ListenOptions& options, ReceiverListener listener) {
  if (options.region.length < options.spec.poolBytes())
    throw KvtError(ErrorCode::OutOfBounds, "registered region of " + std::to_string(options.region.length) +
                                               " bytes is smaller than the pool (" +
                                               std::to_string(options.spec.poolBytes()) + ")");
  if (options.region.onDevice()) device::checkDevicePool(options.region);
  uint16_t boundPort = 0;
  int fd = listenOn(options.host, options.port, &boundPort);
  try {
    return std::make_unique<ReceiverImpl>(fd, boundPort, options, std::move(listener));
  } catch (...) {
    ::close(fd);
    throw;
  }
}

}  // namespace kvt
