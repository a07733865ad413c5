#include "staging.h"

namespace kvt {

std::shared_ptr<DeviceFence> FenceMaker::capture(uint64_t foreignEvent) {
  if (foreignEvent == 0) return nullptr;
  auto fence = std::make_shared<DeviceFence>(relay_.ordinal());
  relay_.waitEvent(reinterpret_cast<void*>(foreignEvent));
  fence->event_.record(relay_);
  return fence;
}

SendStaging::SendStaging(const Region& region, uint64_t chunkBytes)
    : region_(region), chunkBytes_(chunkBytes), mode_(device::defaultStagingCopyMode()), stream_(region.device),
      buffers_{device::PinnedBuffer(region.device, chunkBytes), device::PinnedBuffer(region.device, chunkBytes)},
      ready_{device::Event(region.device), device::Event(region.device)} {}

void SendStaging::run(const std::vector<Range>& ranges, const DeviceFence* after,
                      const std::function<void(const Chunk&, const uint8_t*)>& write) {
  const std::vector<Chunk> chunks = planChunks(ranges, chunkBytes_);
  if (chunks.empty()) return;
  device::setDevice(region_.device);
  if (after != nullptr) after->waitOn(stream_);
  std::vector<device::Copy> copies;
  auto gather = [&](size_t k) {
    const uint64_t host = reinterpret_cast<uint64_t>(buffers_[k % 2].data());
    copies.clear();
    for (const Piece& p : chunks[k].pieces)
      copies.push_back({host + p.chunkOffset, reinterpret_cast<uint64_t>(region_.base) + p.srcOffset, p.length});
    stream_.copy(copies.data(), copies.size(), mode_);
    ready_[k % 2].record(stream_);
  };
  try {
    gather(0);
    for (size_t k = 0; k < chunks.size(); ++k) {
      // The other buffer was last written out in the previous iteration: free to gather into.
      if (k + 1 < chunks.size()) gather(k + 1);
      ready_[k % 2].synchronize();
      write(chunks[k], buffers_[k % 2].data());
    }
  } catch (...) {
    stream_.synchronize();  // no gather may still write a buffer once this returns
    throw;
  }
}

ReceiveStaging::ReceiveStaging(const Region& region, uint64_t bufferBytes)
    : region_(region), mode_(device::defaultStagingCopyMode()), stream_(region.device) {
  for (Buffer& b : buffers_) {
    b.host = std::make_unique<device::PinnedBuffer>(region.device, bufferBytes);
    b.copied = std::make_unique<device::Event>(region.device);
  }
}

ReceiveStaging::~ReceiveStaging() {
  try {
    stream_.synchronize();
  } catch (...) {
  }
}

void ReceiveStaging::submit(Buffer& buffer) {
  if (buffer.copies.empty()) return;
  device::setDevice(region_.device);
  stream_.copy(buffer.copies.data(), buffer.copies.size(), mode_);
  buffer.copied->record(stream_);
  buffer.inFlight = true;
}

void ReceiveStaging::settle(Buffer& buffer, std::vector<LandingLedger::Settled>& settled) {
  if (buffer.inFlight) buffer.copied->synchronize();
  buffer.inFlight = false;
  buffer.copies.clear();
  buffer.used = 0;
  for (const LandingLedger::Settled& s : buffer.ledger.settle()) settled.push_back(s);
}

uint8_t* ReceiveStaging::reserve(uint64_t wanted, uint64_t* granted, std::vector<LandingLedger::Settled>& settled) {
  Buffer* buffer = &buffers_[current_];
  if (buffer->used == buffer->host->size()) {
    submit(*buffer);
    current_ ^= 1;
    buffer = &buffers_[current_];
    settle(*buffer, settled);
  }
  *granted = std::min(wanted, buffer->host->size() - buffer->used);
  return buffer->host->data() + buffer->used;
}

void ReceiveStaging::staged(uint64_t dstOffset, uint64_t length, uint64_t transferId, bool frameEnd) {
  Buffer& buffer = buffers_[current_];
  const uint64_t host = reinterpret_cast<uint64_t>(buffer.host->data() + buffer.used);
  // Consecutive pieces of one frame (or of frames that continue each other) merge into one copy.
  if (!buffer.copies.empty()) {
    device::Copy& last = buffer.copies.back();
    if (last.src + last.length == host && last.dst + last.length == reinterpret_cast<uint64_t>(region_.base) + dstOffset)
      last.length += length;
    else
      buffer.copies.push_back({reinterpret_cast<uint64_t>(region_.base) + dstOffset, host, length});
  } else {
    buffer.copies.push_back({reinterpret_cast<uint64_t>(region_.base) + dstOffset, host, length});
  }
  buffer.used += length;
  buffer.ledger.add(transferId, length, frameEnd);
}

std::vector<LandingLedger::Settled> ReceiveStaging::drain() {
  std::vector<LandingLedger::Settled> settled;
  submit(buffers_[current_]);
  // The other buffer was submitted before the current one: settle it first (order of arrival).
  settle(buffers_[current_ ^ 1], settled);
  settle(buffers_[current_], settled);
  return settled;
}

}  // namespace kvt
