// The Movers of the control-connection sender: how cuda_ipc, nccl and rdma move a send's ranges.
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "nccl_link.h"
#include "plan.h"
#include "rdma.h"
#include "senders.h"

namespace kvt {
namespace {

// cuda_ipc: batched device-to-device copies on the sender's own stream into the receiver's pool
// (mapped with cudaIpcOpenMemHandle, peer access over NVLink / PCIe when on another GPU), each
// send's end marked by an event that the complete thread synchronizes.
class IpcMover final : public Mover {
 public:
  IpcMover(const Region& local, uint8_t* remoteBase, std::shared_ptr<void> keepAlive)
      : local_(local), remoteBase_(remoteBase), keepAlive_(std::move(keepAlive)),
        mode_(device::defaultDeviceCopyMode()), stream_(local.device), fences_(local.device) {}

  TransportKind kind() const override { return TransportKind::CudaIpc; }
  bool oneSided() const override { return true; }
  std::shared_ptr<DeviceFence> fence(uint64_t foreignEvent) override { return fences_.capture(foreignEvent); }

  uint64_t submit(const std::vector<Range>& ranges, const DeviceFence* after) override {
    device::setDevice(local_.device);
    if (after != nullptr) after->waitOn(stream_);
    copies_.clear();
    for (const Range& r : ranges)
      copies_.push_back({reinterpret_cast<uint64_t>(remoteBase_) + r.dstOffset,
                         reinterpret_cast<uint64_t>(local_.base) + r.srcOffset, r.length});
    stream_.copy(copies_.data(), copies_.size(), mode_);
    std::unique_ptr<device::Event> event = takeEvent();
    event->record(stream_);
    std::lock_guard lock(mutex_);
    const uint64_t ticket = nextTicket_++;
    pending_.emplace(ticket, std::move(event));
    return ticket;
  }

  void wait(uint64_t ticket, const std::function<bool()>&, Deadline) override {
    std::unique_ptr<device::Event> event;
    {
      std::lock_guard lock(mutex_);
      auto it = pending_.find(ticket);
      if (it == pending_.end()) return;
      event = std::move(it->second);
      pending_.erase(it);
    }
    device::setDevice(local_.device);
    event->synchronize();  // local copies always finish: no peer to watch
    std::lock_guard lock(mutex_);
    spare_.push_back(std::move(event));
  }

 private:
  std::unique_ptr<device::Event> takeEvent() {
    {
      std::lock_guard lock(mutex_);
      if (!spare_.empty()) {
        auto event = std::move(spare_.back());
        spare_.pop_back();
        return event;
      }
    }
    return std::make_unique<device::Event>(local_.device);
  }

  Region local_;
  uint8_t* remoteBase_;
  std::shared_ptr<void> keepAlive_;  // the mapping; outlives the stream (declared before it)
  device::CopyMode mode_;
  device::Stream stream_;
  FenceMaker fences_;
  std::vector<device::Copy> copies_;  // submit thread only
  std::mutex mutex_;
  uint64_t nextTicket_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<device::Event>> pending_;
  std::vector<std::unique_ptr<device::Event>> spare_;
};

// nccl: the announcement (ranges + Flush / Commit) on the control connection, the bytes through
// the pair's communicator (NcclLink's gather -> send pipeline).
class NcclMover final : public Mover {
 public:
  NcclMover(const Region& local, std::unique_ptr<NcclLink> link)
      : local_(local), fences_(local.device), link_(std::move(link)) {}

  TransportKind kind() const override { return TransportKind::Nccl; }
  bool oneSided() const override { return false; }
  std::shared_ptr<DeviceFence> fence(uint64_t foreignEvent) override { return fences_.capture(foreignEvent); }

  std::vector<uint8_t> announce(uint64_t transferId, const std::vector<Range>& ranges, bool commit,
                                uint64_t declared) override {
    return ncclAnnouncement(transferId, ranges, commit, declared);
  }

  uint64_t submit(const std::vector<Range>& ranges, const DeviceFence* after) override {
    link_->send(ranges, local_.base, after);
    return ++submitted_;
  }

  // Waits for everything sent so far (this send and maybe the next: never too early).
  void wait(uint64_t, const std::function<bool()>& peerGone, Deadline deadline) override {
    link_->wait(peerGone, deadline);
  }

  void abort() override { link_->abort(); }

 private:
  Region local_;
  FenceMaker fences_;
  std::unique_ptr<NcclLink> link_;
  uint64_t submitted_ = 0;
};

// rdma: RDMA WRITEs posted by the submit thread (after the fence's event, waited on the host: the
// NIC does not follow CUDA streams), completions reaped by the complete thread.
class RdmaMover final : public Mover {
 public:
  RdmaMover(const Region& local, std::unique_ptr<rdma::Endpoint> endpoint)
      : endpoint_(std::move(endpoint)), fences_(local.onDevice() ? std::make_unique<FenceMaker>(local.device) : nullptr) {}

  TransportKind kind() const override { return TransportKind::Rdma; }
  bool oneSided() const override { return true; }
  std::shared_ptr<DeviceFence> fence(uint64_t foreignEvent) override {
    return fences_ ? fences_->capture(foreignEvent) : nullptr;
  }

  uint64_t submit(const std::vector<Range>& ranges, const DeviceFence* after) override {
    if (after != nullptr) after->synchronize();
    endpoint_->write(ranges);
    return ++submitted_;
  }

  void wait(uint64_t, const std::function<bool()>&, Deadline deadline) override { endpoint_->wait(deadline); }

 private:
  std::unique_ptr<rdma::Endpoint> endpoint_;
  std::unique_ptr<FenceMaker> fences_;
  uint64_t submitted_ = 0;
};

}  // namespace

std::unique_ptr<Mover> makeIpcMover(const Region& local, uint8_t* remoteBase, std::shared_ptr<void> keepAlive) {
  return std::make_unique<IpcMover>(local, remoteBase, std::move(keepAlive));
}

std::unique_ptr<Mover> makeNcclMover(const Region& local, std::unique_ptr<NcclLink> link) {
  return std::make_unique<NcclMover>(local, std::move(link));
}

std::unique_ptr<Mover> makeRdmaMover(const Region& local, std::unique_ptr<rdma::Endpoint> endpoint) {
  return std::make_unique<RdmaMover>(local, std::move(endpoint));
}

}  // namespace kvt
