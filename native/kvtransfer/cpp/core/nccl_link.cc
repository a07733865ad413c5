#include "nccl_link.h"

#include <thread>

#include "wire.h"

namespace kvt {

static const nccl::Api& loadOrThrow() {
  std::string why;
  const nccl::Api* api = nccl::load(&why);
  if (api == nullptr) throw KvtError(ErrorCode::TransportUnavailable, why);
  return *api;
}

void NcclLink::check(nccl::Result result, const char* call) {
  if (result == nccl::kSuccess) return;
  throw KvtError(ErrorCode::Device, std::string(call) + " failed: " + api_->getErrorString(result));
}

nccl::UniqueId NcclLink::newId() {
  const nccl::Api& api = loadOrThrow();
  nccl::UniqueId id;
  nccl::Result result = api.getUniqueId(&id);
  if (result != nccl::kSuccess)
    throw KvtError(ErrorCode::Device, std::string("ncclGetUniqueId failed: ") + api.getErrorString(result));
  return id;
}

NcclLink::NcclLink(int ordinal, const nccl::UniqueId& id, int rank)
    : api_(&loadOrThrow()), ordinal_(ordinal), peer_(1 - rank), mode_(device::defaultDeviceCopyMode()),
      copyStream_(ordinal), commStream_(ordinal), done_(ordinal) {
  for (int b = 0; b < 2; ++b) {
    buffers_[b] = std::make_unique<device::DeviceBuffer>(ordinal, wire::kNcclChunkBytes);
    copied_[b] = std::make_unique<device::Event>(ordinal);
    moved_[b] = std::make_unique<device::Event>(ordinal);
  }
  device::setDevice(ordinal);
  check(api_->commInitRank(&comm_, 2, id, rank), "ncclCommInitRank");
}

NcclLink::~NcclLink() {
  if (comm_ == nullptr) return;
  device::setDevice(ordinal_);
  if (aborted_) return;
  api_->commDestroy(comm_);
}

std::unique_lock<std::timed_mutex> NcclLink::use() {
  std::unique_lock lock(commMutex_);
  if (aborted_) throw KvtError(ErrorCode::PeerClosed, "the NCCL link was aborted");
  return lock;
}

void NcclLink::abort() {
  if (comm_ == nullptr || aborted_.exchange(true)) return;
  std::unique_lock lock(commMutex_, std::chrono::seconds(1));
  api_->commAbort(comm_);
}

void NcclLink::send(const std::vector<Range>& ranges, const uint8_t* poolBase, const DeviceFence* after) {
  auto lock = use();
  device::setDevice(ordinal_);
  if (after != nullptr) after->waitOn(copyStream_);
  std::vector<device::Copy> copies;
  const std::vector<Chunk> chunks = planChunks(ranges, wire::kNcclChunkBytes);
  for (size_t k = 0; k < chunks.size(); ++k) {
    const int b = int(k % 2);
    if (used_[b]) copyStream_.waitEvent(moved_[b]->handle());  // its previous send has left it
    const uint64_t buffer = reinterpret_cast<uint64_t>(buffers_[b]->data());
    copies.clear();
    for (const Piece& p : chunks[k].pieces)
      copies.push_back({buffer + p.chunkOffset, reinterpret_cast<uint64_t>(poolBase) + p.srcOffset, p.length});
    copyStream_.copy(copies.data(), copies.size(), mode_);
    copied_[b]->record(copyStream_);
    commStream_.waitEvent(copied_[b]->handle());
    check(api_->send(buffers_[b]->data(), chunks[k].bytes, nccl::kUint8, peer_, comm_, commStream_.handle()),
          "ncclSend");
    moved_[b]->record(commStream_);
    used_[b] = true;
  }
  done_.record(commStream_);
}

void NcclLink::receive(const std::vector<Range>& ranges, uint8_t* poolBase, bool land) {
  auto lock = use();
  device::setDevice(ordinal_);
  std::vector<device::Copy> copies;
  const std::vector<Chunk> chunks = planChunks(ranges, wire::kNcclChunkBytes);
  for (size_t k = 0; k < chunks.size(); ++k) {
    const int b = int(k % 2);
    if (used_[b]) commStream_.waitEvent(copied_[b]->handle());  // its previous scatter has read it
    check(api_->recv(buffers_[b]->data(), chunks[k].bytes, nccl::kUint8, peer_, comm_, commStream_.handle()),
          "ncclRecv");
    moved_[b]->record(commStream_);
    if (land) {
      copyStream_.waitEvent(moved_[b]->handle());
      const uint64_t buffer = reinterpret_cast<uint64_t>(buffers_[b]->data());
      copies.clear();
      for (const Piece& p : chunks[k].pieces)
        copies.push_back({reinterpret_cast<uint64_t>(poolBase) + p.dstOffset, buffer + p.chunkOffset, p.length});
      copyStream_.copy(copies.data(), copies.size(), mode_);
      copied_[b]->record(copyStream_);
    } else {
      copied_[b]->record(commStream_);  // dropped: the buffer is free once received
    }
    used_[b] = true;
  }
  // The copy stream waited for every receive it scattered; the rest finished on the comm stream.
  copyStream_.waitEvent(moved_[0]->handle());
  copyStream_.waitEvent(moved_[1]->handle());
  done_.record(copyStream_);
}

void NcclLink::wait(const std::function<bool()>& peerGone, Deadline deadline) {
  const auto spinUntil = Clock::now() + std::chrono::microseconds(100);
  while (!done_.ready()) {
    if (Clock::now() < spinUntil) {
      std::this_thread::yield();
      continue;
    }
    nccl::Result asyncError = nccl::kSuccess;
    {
      auto lock = use();
      api_->commGetAsyncError(comm_, &asyncError);
    }
    if (asyncError != nccl::kSuccess && asyncError != nccl::kInProgress) {
      abort();
      throw KvtError(ErrorCode::Device, std::string("NCCL: ") + api_->getErrorString(asyncError));
    }
    if (peerGone()) {
      abort();
      throw KvtError(ErrorCode::PeerClosed, "the NCCL peer went away mid-transfer");
    }
    if (deadline.expired()) {
      abort();
      throw KvtError(ErrorCode::Timeout, "NCCL transfer passed its deadline");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace kvt
