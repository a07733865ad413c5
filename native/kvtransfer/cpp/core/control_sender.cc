// A sender whose bytes move outside the socket (cuda_ipc, nccl, rdma): one TCP control
// connection carries grants, announcements, commits, aborts and errors; a Mover moves the data.
// Three threads:
//   submit    takes sends in order; one-sided: gets the transfer's grant (Begin -> Grant, once per
//             transfer), then starts the copies; nccl: announces the ranges and the Flush or
//             Commit that follows them (the receiver answers once they landed), then sends
//   complete  waits, in order, for each send's copies to finish (an event or the NIC's completion,
//             on this thread); one-sided, then tells the receiver: Written (+ Commit); an abort
//             goes out only after the writes before it finished
//   read      the receiver's frames: Grant, Release (answered with ReleaseAck once no write of
//             the transfer is in flight), FlushAck / CommitAck (which complete sends)
// Any connection failure fails every send queued or in flight, like the TCP sender.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "senders.h"
#include "wire.h"

namespace kvt {
namespace {

constexpr int64_t kControlWriteMs = 5000;

struct Op {
  enum class Kind { Send, Prepare, Abort } kind = Kind::Send;
  uint64_t transferId = 0;
  std::vector<Range> ranges;
  uint64_t bytes = 0;
  bool commit = false;
  Deadline deadline;
  SendDone done;
  std::shared_ptr<DeviceFence> after;
  uint64_t ticket = 0;
  bool submitted = false;  // copies started: the complete thread waits for them
  uint64_t declared = 0;   // Commit: the transfer's total
  std::optional<KvtError> error;
};

enum class Grant { Asked, Granted, Refused };

class ControlSender final : public Sender {
 public:
  ControlSender(int fd, Region region, uint32_t remoteNumPages, uint64_t remoteRegionBytes,
                std::unique_ptr<Mover> mover)
      : fd_(fd), region_(region), remoteNumPages_(remoteNumPages), remoteRegionBytes_(remoteRegionBytes),
        mover_(std::move(mover)) {
    submitThread_ = std::thread([this] { submitLoop(); });
    completeThread_ = std::thread([this] { completeLoop(); });
    readThread_ = std::thread([this] { readLoop(); });
  }
  ~ControlSender() override { close(); }

  uint32_t remoteNumPages() const override { return remoteNumPages_; }
  uint64_t remoteRegionBytes() const override { return remoteRegionBytes_; }
  TransportKind transport() const override { return mover_->kind(); }

  void send(uint64_t transferId, std::vector<Range> ranges, bool commit, Deadline deadline, uint64_t afterEvent,
            SendDone done) override {
    if (closed_) throw KvtError(ErrorCode::Closed, "sender is closed");
    auto op = std::make_shared<Op>();
    op->bytes = checkRanges(ranges, region_.length, remoteRegionBytes_);
    op->transferId = transferId;
    op->ranges = std::move(ranges);
    op->commit = commit;
    op->deadline = deadline;
    op->done = std::move(done);
    op->after = mover_->fence(afterEvent);
    push(submitQueue_, std::move(op));
  }

  void prepare(uint64_t transferId) override {
    if (closed_ || !mover_->oneSided()) return;
    auto op = std::make_shared<Op>();
    op->kind = Op::Kind::Prepare;
    op->transferId = transferId;
    push(submitQueue_, std::move(op));
  }

  void abort(uint64_t transferId) override {
    if (closed_) return;
    auto op = std::make_shared<Op>();
    op->kind = Op::Kind::Abort;
    op->transferId = transferId;
    push(submitQueue_, std::move(op));
  }

  void close() override {
    if (closed_.exchange(true)) return;
    ::shutdown(fd_, SHUT_RDWR);
    mover_->abort();
    {
      std::lock_guard lock(mutex_);
      wake_.notify_all();
    }
    submitThread_.join();
    completeThread_.join();
    readThread_.join();
    std::deque<std::shared_ptr<Op>> awaiting;
    {
      std::lock_guard lock(mutex_);
      awaiting.swap(awaiting_);
    }
    for (auto& op : awaiting) finish(*op, KvtError(ErrorCode::Closed, "sender was closed"));
    ::close(fd_);
  }

 private:
  void push(std::deque<std::shared_ptr<Op>>& queue, std::shared_ptr<Op> op) {
    std::lock_guard lock(mutex_);
    queue.push_back(std::move(op));
    wake_.notify_all();
  }

  // Next op of a queue, or null once closed and drained.
  std::shared_ptr<Op> pop(std::deque<std::shared_ptr<Op>>& queue, const std::atomic<bool>& upstreamDone) {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [&] { return !queue.empty() || (closed_ && upstreamDone); });
    if (queue.empty()) return nullptr;
    auto op = std::move(queue.front());
    queue.pop_front();
    return op;
  }

  KvtError failure() {
    std::lock_guard lock(mutex_);
    if (broken_) return KvtError(broken_->code(), std::string("connection broken earlier: ") + broken_->what());
    return KvtError(ErrorCode::Closed, "sender was closed");
  }

  bool failed() {
    std::lock_guard lock(mutex_);
    return closed_ || broken_.has_value();
  }

  // The connection is unusable: every send in flight or queued fails.
  void breakAll(const KvtError& error) {
    std::deque<std::shared_ptr<Op>> awaiting;
    {
      std::lock_guard lock(mutex_);
      if (broken_ || closed_) return;
      broken_ = error;
      awaiting.swap(awaiting_);
      wake_.notify_all();
    }
    ::shutdown(fd_, SHUT_RDWR);
    mover_->abort();
    for (auto& op : awaiting) finish(*op, error);
  }

  void writeControl(const void* data, size_t bytes) {
    std::lock_guard lock(writeMutex_);
    sendAll(fd_, data, bytes, Deadline::in(kControlWriteMs));
  }
  void writeFrame(wire::FrameType type, uint64_t transferId, uint64_t offset = 0, uint64_t length = 0) {
    wire::FrameHeader frame = {type, 0, transferId, offset, length};
    writeControl(&frame, sizeof frame);
  }

  void finish(Op& op, std::optional<KvtError> error) {
    if (op.kind != Op::Kind::Send || !op.done) return;
    {
      std::lock_guard lock(mutex_);
      if (error || op.commit) carried_.erase(op.transferId);
    }
    SendDone done = std::move(op.done);
    op.done = nullptr;
    done(error, error ? 0 : op.bytes);
  }

  // One-sided: may this transfer be written? Asks once per transfer; the answer stays until the
  // receiver revokes it (Release).
  // Sends Begin unless the transfer was asked for already (or answered).
  void askGrant(uint64_t transferId) {
    bool fresh;
    {
      std::lock_guard lock(mutex_);
      fresh = grants_.try_emplace(transferId, Grant::Asked).second;
    }
    if (fresh) tryWrite([&] { writeFrame(wire::FrameType::Begin, transferId); });
  }

  std::optional<KvtError> acquireGrant(const Op& op) {
    askGrant(op.transferId);
    std::unique_lock lock(mutex_);
    auto settled = [&] {
      auto g = grants_.find(op.transferId);
      return closed_ || broken_ || g == grants_.end() || g->second != Grant::Asked;
    };
    bool answered = true;
    if (op.deadline.infinite) wake_.wait(lock, settled);
    else answered = wake_.wait_until(lock, op.deadline.at, settled);
    if (closed_ || broken_) return std::nullopt;  // the caller reports the connection's failure
    if (!answered) return KvtError(ErrorCode::Timeout, "no grant for transfer " + std::to_string(op.transferId) +
                                                           " before the send's deadline");
    auto g = grants_.find(op.transferId);
    if (g == grants_.end() || g->second == Grant::Refused)
      return KvtError(ErrorCode::Aborted, "receiver does not expect transfer " + std::to_string(op.transferId) +
                                              " (released or never announced)");
    inflight_[op.transferId]++;
    return std::nullopt;
  }

  void submitLoop() {
    static const std::atomic<bool> always{true};
    while (auto op = pop(submitQueue_, always)) {
      if (op->kind == Op::Kind::Prepare) {
        if (!failed()) askGrant(op->transferId);
        continue;
      }
      if (op->kind == Op::Kind::Abort) {
        std::lock_guard lock(mutex_);
        grants_[op->transferId] = Grant::Refused;  // later sends of it fail here
      } else if (failed()) {
        op->error = failure();
      } else {
        try {
          if (mover_->oneSided()) {
            op->error = acquireGrant(*op);
            if (!op->error && failed()) op->error = failure();
          } else {
            // Two-sided: the acknowledgement may come before this side sees its send finish.
            std::lock_guard lock(mutex_);
            inflight_[op->transferId]++;
            uint64_t& announced = announced_[op->transferId];
            op->declared = announced + op->bytes;
            if (op->commit) announced_.erase(op->transferId);
            else announced += op->bytes;
            awaiting_.push_back(op);
          }
          if (!op->error) {
            op->submitted = true;
            std::vector<uint8_t> announcement = mover_->announce(op->transferId, op->ranges, op->commit, op->declared);
            if (!announcement.empty()) writeControl(announcement.data(), announcement.size());
            op->ticket = mover_->submit(op->ranges, op->after.get());
          }
        } catch (const KvtError& error) {
          op->error = error;
          breakAll(error);
        }
      }
      push(completeQueue_, std::move(op));
    }
    submitDone_ = true;
    std::lock_guard lock(mutex_);
    wake_.notify_all();
  }

  void completeLoop() {
    const int fd = fd_;
    while (auto op = pop(completeQueue_, submitDone_)) {
      if (op->submitted) {
        if (!op->error) {
          try {
            mover_->wait(op->ticket, [this, fd] { return failed() || peerHungUp(fd); }, op->deadline);
          } catch (const KvtError& error) {
            op->error = error;
            breakAll(error);
          }
        }
        writesFinished(op->transferId);
      }
      if (op->kind == Op::Kind::Abort) {
        if (!failed()) tryWrite([&] { writeFrame(wire::FrameType::Abort, op->transferId); });
        continue;
      }
      if (op->error) {
        finish(*op, op->error);
        continue;
      }
      if (failed()) {
        finish(*op, failure());
        continue;
      }
      if (mover_->oneSided()) tell(op);  // two-sided: the acknowledgement completes it
    }
  }

  // One-sided, after a send's writes finished: Written (what landed), and Commit with the
  // transfer's total when asked; a commit completes on its acknowledgement.
  void tell(const std::shared_ptr<Op>& op) {
    uint64_t total = op->bytes;
    {
      std::lock_guard lock(mutex_);
      if (op->commit) {
        if (auto it = carried_.find(op->transferId); it != carried_.end()) total += it->second;
      } else {
        carried_[op->transferId] += op->bytes;
      }
    }
    op->declared = total;
    const bool awaitAck = op->commit;
    if (awaitAck) {
      std::lock_guard lock(mutex_);
      awaiting_.push_back(op);
    }
    bool written = tryWrite([&] {
      wire::FrameHeader frames[2] = {{wire::FrameType::Written, 0, op->transferId, 0, op->bytes},
                                     {wire::FrameType::Commit, 0, op->transferId, 0, total}};
      writeControl(frames, op->commit ? sizeof frames : sizeof frames[0]);
    });
    if (written && !awaitAck) finish(*op, std::nullopt);
    // A failed write broke the connection: breakAll failed the awaiting ops (this one included).
    if (!written && !awaitAck) finish(*op, failure());
  }

  template <typename Write>
  bool tryWrite(const Write& write) {
    try {
      write();
      return true;
    } catch (const KvtError& error) {
      breakAll(error);
      return false;
    }
  }

  // No write of the op is in flight any more; a pending release of its transfer is answered.
  void writesFinished(uint64_t transferId) {
    bool answer = false;
    {
      std::lock_guard lock(mutex_);
      auto it = inflight_.find(transferId);
      if (it != inflight_.end() && --it->second == 0) {
        inflight_.erase(it);
        answer = releasing_.erase(transferId) > 0;
      }
    }
    if (answer) tryWrite([&] { writeFrame(wire::FrameType::ReleaseAck, transferId); });
  }

  void readLoop() {
    try {
      for (;;) {
        if (failed()) return;
        if (!readable(fd_, 50)) {
          expireAwaiting();
          continue;
        }
        wire::FrameHeader frame;
        if (!recvAll(fd_, &frame, sizeof frame, Deadline::in(kControlWriteMs)))
          throw KvtError(ErrorCode::PeerClosed, "receiver closed the connection");
        onFrame(frame);
      }
    } catch (const KvtError& error) {
      breakAll(closed_ ? KvtError(ErrorCode::Closed, "sender was closed") : error);
    }
  }

  // An acknowledgement that does not come by its send's deadline breaks the connection.
  void expireAwaiting() {
    bool expired = false;
    {
      std::lock_guard lock(mutex_);
      expired = !awaiting_.empty() && awaiting_.front()->deadline.expired();
    }
    if (expired) breakAll(KvtError(ErrorCode::Timeout, "the receiver did not acknowledge before the send's deadline"));
  }

  void onFrame(const wire::FrameHeader& frame) {
    const uint64_t id = frame.transferId;
    switch (frame.type) {
      case wire::FrameType::Grant: {
        std::lock_guard lock(mutex_);
        if (auto it = grants_.find(id); it != grants_.end() && it->second == Grant::Asked)
          it->second = frame.offset == wire::kAckOk ? Grant::Granted : Grant::Refused;
        wake_.notify_all();
        return;
      }
      case wire::FrameType::Release: {
        bool answerNow = false;
        {
          std::lock_guard lock(mutex_);
          grants_[id] = Grant::Refused;
          wake_.notify_all();
          if (inflight_.count(id) == 0) answerNow = true;
          else releasing_.insert(id);
        }
        if (answerNow) writeFrame(wire::FrameType::ReleaseAck, id);
        return;
      }
      case wire::FrameType::FlushAck:
      case wire::FrameType::CommitAck: {
        std::shared_ptr<Op> op;
        {
          std::lock_guard lock(mutex_);
          if (awaiting_.empty() || awaiting_.front()->transferId != id)
            throw KvtError(ErrorCode::Protocol, "an acknowledgement for no send in flight");
          op = std::move(awaiting_.front());
          awaiting_.pop_front();
          if (frame.type == wire::FrameType::CommitAck) grants_.erase(id);  // the receiver is done with it
        }
        const bool isCommit = frame.type == wire::FrameType::CommitAck;
        if (isCommit != op->commit) throw KvtError(ErrorCode::Protocol, "acknowledgement of the wrong kind");
        if (frame.offset == wire::kAckNotExpected) {
          finish(*op, KvtError(ErrorCode::Aborted, "receiver does not expect transfer " + std::to_string(id) +
                                                       " (released or never announced)"));
        } else if (isCommit && frame.offset != wire::kAckOk) {
          finish(*op, KvtError(ErrorCode::CommitMismatch, "receiver counted " + std::to_string(frame.length) +
                                                              " bytes, expected " + std::to_string(op->declared)));
        } else if (!isCommit && frame.length != op->bytes) {
          finish(*op, KvtError(ErrorCode::CommitMismatch, "receiver acknowledged " + std::to_string(frame.length) +
                                                              " bytes of " + std::to_string(op->bytes)));
        } else {
          finish(*op, std::nullopt);
        }
        return;
      }
      default:
        throw KvtError(ErrorCode::Protocol, "unexpected frame type " + std::to_string(uint32_t(frame.type)));
    }
  }

  int fd_;
  Region region_;
  uint32_t remoteNumPages_;
  uint64_t remoteRegionBytes_;
  std::unique_ptr<Mover> mover_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> submitDone_{false};
  std::mutex writeMutex_;  // control frames come from all three threads
  std::mutex mutex_;       // everything below
  std::condition_variable wake_;
  std::optional<KvtError> broken_;
  std::deque<std::shared_ptr<Op>> submitQueue_;
  std::deque<std::shared_ptr<Op>> completeQueue_;
  std::deque<std::shared_ptr<Op>> awaiting_;         // sent Flush / Commit, waiting for its ack (in order)
  std::unordered_map<uint64_t, Grant> grants_;       // one-sided: what the receiver said per transfer
  std::unordered_map<uint64_t, int> inflight_;       // transfer -> ops whose copies may still be running
  std::unordered_set<uint64_t> releasing_;           // revoked while writes were in flight: ack when done
  std::unordered_map<uint64_t, uint64_t> carried_;   // one-sided: bytes of earlier uncommitted sends per transfer
  std::unordered_map<uint64_t, uint64_t> announced_; // two-sided: the same, counted when announced
  std::thread submitThread_;
  std::thread completeThread_;
  std::thread readThread_;
};

}  // namespace

std::unique_ptr<Sender> makeControlSender(int fd, Region region, uint32_t remoteNumPages, uint64_t remoteRegionBytes,
                                          std::unique_ptr<Mover> mover) {
  return std::make_unique<ControlSender>(fd, region, remoteNumPages, remoteRegionBytes, std::move(mover));
}

}  // namespace kvt
