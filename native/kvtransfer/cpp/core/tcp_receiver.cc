// TCP receiver: one accept thread, one thread per connection. Data frames are received straight
// into the registered region (no staging copy); transfers are tracked across the sender's
// parallel streams and reported once committed, aborted or broken.
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
#include <vector>
#include <unordered_map>

#include "transport.h"
#include "wire.h"

namespace kvt {
namespace {

class TcpReceiver final : public Receiver {
 public:
  TcpReceiver(int listenFd, uint16_t port, KvSpec spec, Region region, int64_t ioTimeoutMs,
              ReceiverListener listener)
      : listenFd_(listenFd), port_(port), spec_(std::move(spec)), region_(region),
        ioTimeoutMs_(ioTimeoutMs), listener_(std::move(listener)) {
    if (::pipe2(wakePipe_, O_CLOEXEC) != 0) throw KvtError(ErrorCode::Io, "pipe2 failed");
    acceptThread_ = std::thread([this] { acceptLoop(); });
  }
  ~TcpReceiver() override { close(); }

  uint16_t port() const override { return port_; }

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
    if (it->second.inflightFrames == 0) {
      transfers_.erase(it);
      return true;
    }
    it->second.released = true;
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
  };

  void acceptLoop() {
    for (;;) {
      struct pollfd fds[2] = {{listenFd_, POLLIN, 0}, {wakePipe_[0], POLLIN, 0}};
      int rc = ::poll(fds, 2, -1);
      if (closed_) return;
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
      connections_.push_back({fd, std::thread()});
      connections_.back().thread = std::thread([this, fd] { serve(fd); });
    }
  }

  void emit(ReceiverEvent event) {
    if (!closed_) listener_(std::move(event));
  }

  // Runs one connection to its end; every transfer it touched and left open fails with it.
  void serve(int fd) {
    std::set<uint64_t> touched;
    std::unordered_map<uint64_t, uint64_t> streamBytes;  // transfer -> bytes via this stream since its last flush
    std::set<uint64_t> discarded;                        // transfers whose frames this stream dropped
    ErrorCode code = ErrorCode::PeerClosed;
    std::string message = "sender closed the connection";
    try {
      if (!handshake(fd)) return;
      for (;;) {
        wire::FrameHeader header;
        if (!recvAll(fd, &header, sizeof header, Deadline::never())) break;  // clean end
        handleFrame(fd, header, touched, streamBytes, discarded);
      }
    } catch (const KvtError& error) {
      code = error.code() == ErrorCode::Timeout ? ErrorCode::Timeout : error.code();
      message = error.what();
    }
    failOpen(touched, code, message);
    ::shutdown(fd, SHUT_RDWR);
    std::lock_guard lock(mutex_);
    finished_.push_back(fd);
  }

  // Joins and closes connections whose thread has ended (called with mutex_ held).
  void reapFinished() {
    for (int fd : finished_) {
      for (auto it = connections_.begin(); it != connections_.end(); ++it) {
        if (it->fd != fd) continue;
        it->thread.join();
        ::close(fd);
        connections_.erase(it);
        break;
      }
    }
    finished_.clear();
  }

  bool handshake(int fd) {
    wire::Hello hello;
    Deadline deadline = Deadline::in(ioTimeoutMs_);
    if (!recvAll(fd, &hello, sizeof hello, deadline)) return false;
    wire::HelloReply reply = {};
    reply.magic = wire::kMagic;
    reply.numPages = spec_.numPages;
    reply.regionBytes = region_.length;
    std::string reason;
    if (hello.magic != wire::kMagic || hello.version != wire::kVersion) {
      reply.status = wire::HelloStatus::BadVersion;
      reason = "protocol version: receiver speaks " + std::to_string(wire::kVersion) + ", sender " +
               std::to_string(hello.version);
    } else {
      KvSpec remote;
      remote.model.assign(hello.model, strnlen(hello.model, sizeof hello.model));
      remote.dtype.assign(hello.dtype, strnlen(hello.dtype, sizeof hello.dtype));
      remote.numLayers = hello.numLayers;
      remote.numKvHeads = hello.numKvHeads;
      remote.headDim = hello.headDim;
      remote.pageSize = hello.pageSize;
      reason = describeMismatch(spec_, remote);
      reply.status = reason.empty() ? wire::HelloStatus::Ok : wire::HelloStatus::Mismatch;
    }
    std::strncpy(reply.reason, reason.c_str(), sizeof reply.reason - 1);
    sendAll(fd, &reply, sizeof reply, deadline);
    if (reply.status == wire::HelloStatus::Ok) return true;
    emit({ReceiverEvent::Type::Rejected, 0, 0, ErrorCode::HandshakeMismatch, reason});
    return false;
  }

  void handleFrame(int fd, const wire::FrameHeader& header, std::set<uint64_t>& touched,
                   std::unordered_map<uint64_t, uint64_t>& streamBytes, std::set<uint64_t>& discarded) {
    Deadline deadline = Deadline::in(ioTimeoutMs_);
    switch (header.type) {
      case wire::FrameType::Data: {
        if (header.length > region_.length || header.offset > region_.length - header.length)
          throw KvtError(ErrorCode::OutOfBounds, "data frame [" + std::to_string(header.offset) + ", +" +
                                                     std::to_string(header.length) + ") outside the region of " +
                                                     std::to_string(region_.length) + " bytes");
        bool accepted = false;
        {
          std::lock_guard lock(mutex_);
          auto it = transfers_.find(header.transferId);
          if (it != transfers_.end() && !it->second.released) {
            it->second.inflightFrames++;
            accepted = true;
          }
        }
        if (!accepted) {  // not expected (or released): read and drop, never touch the region
          discarded.insert(header.transferId);
          discard(fd, header.length, deadline);
          return;
        }
        touched.insert(header.transferId);
        bool landed = false;
        try {
          landed = recvAll(fd, region_.base + header.offset, header.length, deadline);
        } catch (...) {
          frameDone(header.transferId, 0);
          throw;
        }
        frameDone(header.transferId, landed ? header.length : 0);
        if (!landed) throw KvtError(ErrorCode::PeerClosed, "sender closed the connection mid-frame");
        streamBytes[header.transferId] += header.length;
        return;
      }
      case wire::FrameType::Flush: {
        wire::FrameHeader ack = {wire::FrameType::FlushAck, 0, header.transferId, wire::kAckOk, 0};
        if (discarded.erase(header.transferId) > 0) ack.offset = wire::kAckNotExpected;
        if (auto it = streamBytes.find(header.transferId); it != streamBytes.end()) {
          ack.length = it->second;
          streamBytes.erase(it);
        }
        sendAll(fd, &ack, sizeof ack, deadline);
        return;
      }
      case wire::FrameType::Commit: {
        uint64_t counted = 0;
        bool known = false;
        {
          std::lock_guard lock(mutex_);
          auto it = transfers_.find(header.transferId);
          if (it != transfers_.end() && !it->second.released) {
            known = true;
            counted = it->second.bytes;
            transfers_.erase(it);  // every frame of it has landed: the sender flushed them all
          }
        }
        touched.erase(header.transferId);
        streamBytes.erase(header.transferId);
        bool discardedHere = discarded.erase(header.transferId) > 0;
        uint64_t status = !known || discardedHere ? wire::kAckNotExpected
                          : counted == header.length ? wire::kAckOk
                                                     : wire::kAckCountMismatch;
        wire::FrameHeader ack = {wire::FrameType::CommitAck, 0, header.transferId, status, counted};
        sendAll(fd, &ack, sizeof ack, deadline);
        if (status == wire::kAckOk)
          emit({ReceiverEvent::Type::Completed, header.transferId, counted, ErrorCode::Io, ""});
        else if (status == wire::kAckCountMismatch)
          emit({ReceiverEvent::Type::Failed, header.transferId, counted, ErrorCode::CommitMismatch,
                "received " + std::to_string(counted) + " bytes, sender declared " + std::to_string(header.length)});
        return;
      }
      case wire::FrameType::Abort: {
        uint64_t counted = 0;
        bool known = false;
        {
          std::lock_guard lock(mutex_);
          auto it = transfers_.find(header.transferId);
          if (it != transfers_.end() && !it->second.released) {
            counted = it->second.bytes;
            known = true;
            if (it->second.inflightFrames == 0) transfers_.erase(it);
            else it->second.released = true;
          }
        }
        touched.erase(header.transferId);
        streamBytes.erase(header.transferId);
        discarded.erase(header.transferId);
        if (known)
          emit({ReceiverEvent::Type::Failed, header.transferId, counted, ErrorCode::Aborted,
                "sender aborted the transfer"});
        return;
      }
      default:
        throw KvtError(ErrorCode::Protocol, "unexpected frame type " + std::to_string(uint32_t(header.type)));
    }
  }

  void failOpen(const std::set<uint64_t>& touched, ErrorCode code, const std::string& message) {
    for (uint64_t transferId : touched) {
      uint64_t counted = 0;
      {
        std::lock_guard lock(mutex_);
        auto it = transfers_.find(transferId);
        if (it == transfers_.end() || it->second.released) continue;  // done through another stream
        counted = it->second.bytes;
        if (it->second.inflightFrames == 0) transfers_.erase(it);
        else it->second.released = true;
      }
      emit({ReceiverEvent::Type::Failed, transferId, counted, code, message});
    }
  }

  // A frame of an accepted transfer finished (landed or not); a released transfer whose last
  // frame in flight this was is now quiet.
  void frameDone(uint64_t transferId, uint64_t bytes) {
    bool quiet = false;
    {
      std::lock_guard lock(mutex_);
      auto it = transfers_.find(transferId);
      if (it == transfers_.end()) return;
      it->second.inflightFrames--;
      it->second.bytes += bytes;
      if (it->second.released && it->second.inflightFrames == 0) {
        transfers_.erase(it);
        quiet = true;
      }
    }
    if (quiet) emit({ReceiverEvent::Type::Released, transferId, 0, ErrorCode::Io, ""});
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

  struct TransferState {
    uint64_t bytes = 0;       // landed so far
    int inflightFrames = 0;   // frames being received into the region right now
    bool released = false;    // no new frame lands; erased once inflightFrames is 0
  };

  int listenFd_;
  uint16_t port_;
  KvSpec spec_;
  Region region_;
  int64_t ioTimeoutMs_;
  ReceiverListener listener_;
  int wakePipe_[2] = {-1, -1};
  std::atomic<bool> closed_{false};
  std::thread acceptThread_;
  mutable std::mutex mutex_;
  std::list<Connection> connections_;                   // guarded by mutex_ until close
  std::unordered_map<uint64_t, TransferState> transfers_;  // expected transfers
  std::vector<int> finished_;                          // connections whose thread ended, to reap
};

}  // namespace

std::unique_ptr<Receiver> listenTcp(const std::string& host, uint16_t port, const KvSpec& spec, Region region,
                                    int64_t ioTimeoutMs, ReceiverListener listener) {
  if (region.length < spec.poolBytes())
    throw KvtError(ErrorCode::OutOfBounds, "registered region of " + std::to_string(region.length) +
                                               " bytes is smaller than the pool (" + std::to_string(spec.poolBytes()) +
                                               ")");
  uint16_t boundPort = 0;
  int fd = listenOn(host, port, &boundPort);
  return std::make_unique<TcpReceiver>(fd, boundPort, spec, region, ioTimeoutMs, std::move(listener));
}

}  // namespace kvt
