// TCP sender: N parallel streams to one receiver, one thread each. A send is split by bytes
// into N contiguous shares; each stream writes its share as Data frames (header + payload in one
// sendmsg, many frames per syscall), then a Flush, and waits for the FlushAck. The stream that
// finishes a send last sends its Commit (when asked) and reports completion. A GPU pool is
// staged: each stream gathers its share chunk by chunk into pinned buffers (SendStaging) and
// writes the frames from there.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "senders.h"
#include "wire.h"

namespace kvt {
namespace {

constexpr uint64_t kMaxFrameBytes = 16ull << 20;  // bounds one payload read's deadline
constexpr size_t kFramesPerWrite = 256;            // 512 iovecs per sendmsg (IOV_MAX is 1024)

// The receiver dropped the transfer's frames (released it, or never expected it). The streams
// stay usable: this is the transfer's failure, not the connection's.
struct NotExpected : KvtError {
  explicit NotExpected(uint64_t transferId)
      : KvtError(ErrorCode::Aborted, "receiver does not expect transfer " + std::to_string(transferId) +
                                         " (released or never announced)") {}
};

struct Op {
  uint64_t transferId;
  bool commit;
  Deadline deadline;
  SendDone done;
  uint64_t totalBytes;
  bool inlineCommit = false;  // one part: its Commit replaces the Flush (one round trip less)
  std::mutex mutex;
  int partsLeft;
  std::optional<KvtError> error;
};

struct Part {
  enum class Kind { Send, Abort } kind;
  std::shared_ptr<Op> op;  // null for Abort
  uint64_t transferId;
  std::vector<Range> ranges;
  uint64_t bytes;
  std::shared_ptr<DeviceFence> after;  // a GPU pool's copies wait for it
};

struct Stream {
  int fd = -1;
  std::thread thread;
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Part> queue;
  std::unique_ptr<SendStaging> staging;  // GPU pool: made on the stream's thread at its first send
};

class TcpSender final : public Sender {
 public:
  TcpSender(std::vector<int> fds, Region region, uint32_t remoteNumPages, uint64_t remoteRegionBytes)
      : region_(region), remoteNumPages_(remoteNumPages), remoteRegionBytes_(remoteRegionBytes) {
    if (region.onDevice()) fences_ = std::make_unique<FenceMaker>(region.device);
    streams_.reserve(fds.size());
    for (int fd : fds) {
      auto stream = std::make_unique<Stream>();
      stream->fd = fd;
      streams_.push_back(std::move(stream));
    }
    for (size_t i = 0; i < streams_.size(); ++i) streams_[i]->thread = std::thread([this, i] { run(i); });
  }
  ~TcpSender() override { close(); }

  uint32_t remoteNumPages() const override { return remoteNumPages_; }
  uint64_t remoteRegionBytes() const override { return remoteRegionBytes_; }

  TransportKind transport() const override { return TransportKind::Tcp; }

  void send(uint64_t transferId, std::vector<Range> ranges, bool commit, Deadline deadline, uint64_t afterEvent,
            SendDone done) override {
    if (closed_) throw KvtError(ErrorCode::Closed, "sender is closed");
    const uint64_t totalBytes = checkRanges(ranges, region_.length, remoteRegionBytes_);
    std::shared_ptr<DeviceFence> after = fences_ ? fences_->capture(afterEvent) : nullptr;
    auto shares = split(ranges, totalBytes);
    auto op = std::make_shared<Op>();
    op->transferId = transferId;
    op->commit = commit;
    op->deadline = deadline;
    op->done = std::move(done);
    op->totalBytes = totalBytes;
    std::vector<size_t> used;
    for (size_t i = 0; i < shares.size(); ++i)
      if (!shares[i].empty()) used.push_back(i);
    if (used.empty()) used.push_back(0);  // nothing to move: still flush (and commit) through stream 0
    op->partsLeft = int(used.size());
    op->inlineCommit = commit && used.size() == 1;
    for (size_t i : used) {
      uint64_t bytes = 0;
      for (const Range& r : shares[i]) bytes += r.length;
      enqueue(i, Part{Part::Kind::Send, op, transferId, std::move(shares[i]), bytes, after});
    }
  }

  void abort(uint64_t transferId) override {
    if (closed_) return;
    enqueue(0, Part{Part::Kind::Abort, nullptr, transferId, {}, 0, nullptr});
  }

  void close() override {
    if (closed_.exchange(true)) return;
    for (auto& stream : streams_) {
      ::shutdown(stream->fd, SHUT_RDWR);
      std::lock_guard lock(stream->mutex);
      stream->wake.notify_all();
    }
    for (auto& stream : streams_) {
      if (stream->thread.joinable()) stream->thread.join();
      ::close(stream->fd);
    }
  }

 private:
  // Splits the ranges into one contiguous byte share per stream, frames of at most kMaxFrameBytes.
  std::vector<std::vector<Range>> split(const std::vector<Range>& ranges, uint64_t totalBytes) const {
    size_t n = streams_.size();
    std::vector<std::vector<Range>> shares(n);
    uint64_t perStream = (totalBytes + n - 1) / std::max<uint64_t>(n, 1);
    size_t stream = 0;
    uint64_t filled = 0;
    for (Range r : ranges) {
      while (r.length > 0) {
        if (filled == perStream && stream + 1 < n) {
          ++stream;
          filled = 0;
        }
        uint64_t take = std::min({r.length, kMaxFrameBytes, perStream - filled});
        if (stream + 1 == n) take = std::min(r.length, kMaxFrameBytes);
        shares[stream].push_back({r.srcOffset, r.dstOffset, take});
        r.srcOffset += take;
        r.dstOffset += take;
        r.length -= take;
        filled += take;
      }
    }
    return shares;
  }

  void enqueue(size_t index, Part part) {
    Stream& stream = *streams_[index];
    std::lock_guard lock(stream.mutex);
    stream.queue.push_back(std::move(part));
    stream.wake.notify_one();
  }

  // Any stream failure leaves the others' state unknown: close every socket so queued and
  // in-flight work fails fast; the owner reconnects.
  void breakAll(const KvtError& error) {
    std::lock_guard lock(brokenMutex_);
    if (broken_) return;
    broken_ = error;
    for (auto& stream : streams_) ::shutdown(stream->fd, SHUT_RDWR);
  }

  KvtError brokenError() {
    std::lock_guard lock(brokenMutex_);
    if (closed_ && !broken_) return KvtError(ErrorCode::Closed, "sender was closed");
    return broken_ ? KvtError(broken_->code(), std::string("connection broken earlier: ") + broken_->what())
                   : KvtError(ErrorCode::Closed, "sender was closed");
  }

  bool isBroken() {
    std::lock_guard lock(brokenMutex_);
    return broken_.has_value();
  }

  void run(size_t index) {
    Stream& stream = *streams_[index];
    for (;;) {
      Part part;
      {
        std::unique_lock lock(stream.mutex);
        stream.wake.wait(lock, [&] { return !stream.queue.empty() || closed_; });
        if (stream.queue.empty()) return;  // closed and drained
        part = std::move(stream.queue.front());
        stream.queue.pop_front();
      }
      std::optional<KvtError> error;
      if (closed_ || isBroken()) {
        error = brokenError();
      } else {
        try {
          if (part.kind == Part::Kind::Abort) {
            wire::FrameHeader header = {wire::FrameType::Abort, 0, part.transferId, 0, 0};
            sendAll(stream.fd, &header, sizeof header, Deadline::in(5000));
            continue;
          }
          writeShare(stream, part);
        } catch (const NotExpected& e) {
          error = e;
        } catch (const KvtError& e) {
          error = closed_ ? KvtError(ErrorCode::Closed, "sender was closed") : e;
          breakAll(*error);
        }
      }
      if (part.kind == Part::Kind::Send) finishPart(stream.fd, *part.op, std::move(error));
    }
  }

  // Data frames of `count` pieces, many per sendmsg: piece i is source(i) = {payload, dst, length}.
  template <typename Source>
  static void writeFrames(int fd, uint64_t transferId, size_t count, const Source& source, Deadline deadline) {
    std::vector<wire::FrameHeader> headers(std::min(count, kFramesPerWrite));
    std::vector<struct iovec> iov(headers.size() * 2);
    for (size_t begin = 0; begin < count; begin += kFramesPerWrite) {
      size_t end = std::min(count, begin + kFramesPerWrite);
      for (size_t i = begin; i < end; ++i) {
        auto [payload, dstOffset, length] = source(i);
        wire::FrameHeader& h = headers[i - begin];
        h = {wire::FrameType::Data, 0, transferId, dstOffset, length};
        iov[2 * (i - begin)] = {&h, sizeof h};
        iov[2 * (i - begin) + 1] = {payload, length};
      }
      writevAll(fd, iov.data(), int(2 * (end - begin)), deadline);
    }
  }

  void writeShare(Stream& stream, const Part& part) {
    const int fd = stream.fd;
    const Deadline deadline = part.op->deadline;
    if (region_.onDevice()) {
      if (!stream.staging) stream.staging = std::make_unique<SendStaging>(region_);
      stream.staging->run(part.ranges, part.after.get(), [&](const Chunk& chunk, const uint8_t* host) {
        writeFrames(
            fd, part.transferId, chunk.pieces.size(),
            [&](size_t i) {
              const Piece& p = chunk.pieces[i];
              return std::tuple{const_cast<uint8_t*>(host) + p.chunkOffset, p.dstOffset, p.length};
            },
            deadline);
      });
    } else {
      writeFrames(
          fd, part.transferId, part.ranges.size(),
          [&](size_t i) {
            const Range& r = part.ranges[i];
            return std::tuple{region_.base + r.srcOffset, r.dstOffset, r.length};
          },
          deadline);
    }
    if (part.op->inlineCommit) {
      commitAndWait(fd, *part.op);
      return;
    }
    wire::FrameHeader flush = {wire::FrameType::Flush, 0, part.transferId, 0, 0};
    sendAll(fd, &flush, sizeof flush, deadline);
    wire::FrameHeader ack;
    if (!recvAll(fd, &ack, sizeof ack, deadline))
      throw KvtError(ErrorCode::PeerClosed, "receiver closed the connection before acknowledging");
    if (ack.type != wire::FrameType::FlushAck || ack.transferId != part.transferId)
      throw KvtError(ErrorCode::Protocol, "expected a FlushAck");
    if (ack.offset == wire::kAckNotExpected)
      throw NotExpected(part.transferId);
    if (ack.length != part.bytes)
      throw KvtError(ErrorCode::CommitMismatch, "receiver acknowledged " + std::to_string(ack.length) +
                                                    " bytes of " + std::to_string(part.bytes));
  }

  // Commits the transfer: the receiver compares the bytes it counted with every byte sent for it.
  void commitAndWait(int fd, Op& op) {
    wire::FrameHeader commit = {wire::FrameType::Commit, 0, op.transferId, 0, op.totalBytes};
    {
      std::lock_guard lock(committedMutex_);
      if (auto it = committedBytes_.find(op.transferId); it != committedBytes_.end()) {
        commit.length += it->second;
        committedBytes_.erase(it);
      }
    }
    sendAll(fd, &commit, sizeof commit, op.deadline);
    wire::FrameHeader ack;
    if (!recvAll(fd, &ack, sizeof ack, op.deadline))
      throw KvtError(ErrorCode::PeerClosed, "receiver closed the connection before acknowledging the commit");
    if (ack.type != wire::FrameType::CommitAck) throw KvtError(ErrorCode::Protocol, "expected a CommitAck");
    if (ack.offset == wire::kAckNotExpected) throw NotExpected(op.transferId);
    if (ack.offset != wire::kAckOk)
      throw KvtError(ErrorCode::CommitMismatch, "receiver counted " + std::to_string(ack.length) +
                                                    " bytes, expected " + std::to_string(commit.length));
  }

  void finishPart(int fd, Op& op, std::optional<KvtError> error) {
    {
      std::lock_guard lock(op.mutex);
      if (error && !op.error) op.error = std::move(error);
      if (--op.partsLeft > 0) return;
    }
    // Last part: every byte of this send has landed (or failed).
    if (!op.error && op.commit && !op.inlineCommit) {
      try {
        commitAndWait(fd, op);
      } catch (const NotExpected& e) {
        op.error = e;
      } catch (const KvtError& e) {
        op.error = e;
        breakAll(e);
      }
    } else if (!op.error && !op.commit) {
      std::lock_guard lock(committedMutex_);
      committedBytes_[op.transferId] += op.totalBytes;
    } else if (op.error) {
      std::lock_guard lock(committedMutex_);
      committedBytes_.erase(op.transferId);
    }
    op.done(op.error, op.error ? 0 : op.totalBytes);
  }

  Region region_;
  uint32_t remoteNumPages_;
  uint64_t remoteRegionBytes_;
  std::unique_ptr<FenceMaker> fences_;  // GPU pool: captures send()'s afterEvent
  std::vector<std::unique_ptr<Stream>> streams_;
  std::atomic<bool> closed_{false};
  std::mutex brokenMutex_;
  std::optional<KvtError> broken_;
  std::mutex committedMutex_;
  std::unordered_map<uint64_t, uint64_t> committedBytes_;  // bytes of earlier uncommitted sends per transfer
};

}  // namespace

std::unique_ptr<Sender> makeTcpSender(std::vector<int> fds, Region region, uint32_t remoteNumPages,
                                      uint64_t remoteRegionBytes) {
  return std::make_unique<TcpSender>(std::move(fds), region, remoteNumPages, remoteRegionBytes);
}

}  // namespace kvt
