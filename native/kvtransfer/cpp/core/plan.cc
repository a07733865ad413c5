#include "plan.h"

#include <algorithm>
#include <cstring>

#include "wire.h"

namespace kvt {

std::vector<Chunk> planChunks(const std::vector<Range>& ranges, uint64_t chunkBytes) {
  std::vector<Chunk> chunks;
  for (Range r : ranges) {
    while (r.length > 0) {
      if (chunks.empty() || chunks.back().bytes == chunkBytes) chunks.emplace_back();
      Chunk& chunk = chunks.back();
      const uint64_t take = std::min(r.length, chunkBytes - chunk.bytes);
      chunk.pieces.push_back({r.srcOffset, r.dstOffset, take, chunk.bytes});
      chunk.bytes += take;
      r.srcOffset += take;
      r.dstOffset += take;
      r.length -= take;
    }
  }
  return chunks;
}

void LandingLedger::add(uint64_t transferId, uint64_t bytes, bool frameEnd) {
  pieces_.push_back({transferId, bytes, frameEnd});
}

std::vector<LandingLedger::Settled> LandingLedger::settle() {
  std::vector<Settled> out;
  for (const Entry& e : pieces_) {
    auto it = std::find_if(out.begin(), out.end(), [&](const Settled& s) { return s.transferId == e.transferId; });
    if (it == out.end()) it = out.insert(out.end(), Settled{e.transferId, 0, 0});
    it->bytes += e.bytes;
    it->framesEnded += e.frameEnd ? 1 : 0;
  }
  pieces_.clear();
  return out;
}

std::vector<uint8_t> ncclAnnouncement(uint64_t transferId, const std::vector<Range>& ranges, bool commit,
                                      uint64_t declared) {
  uint64_t total = 0;
  for (const Range& r : ranges) total += r.length;
  std::vector<uint8_t> out(2 * sizeof(wire::FrameHeader) + ranges.size() * 2 * sizeof(uint64_t));
  wire::FrameHeader data = {wire::FrameType::NcclData, 0, transferId, ranges.size(), total};
  std::memcpy(out.data(), &data, sizeof data);
  uint8_t* cursor = out.data() + sizeof data;
  for (const Range& r : ranges) {
    const uint64_t pair[2] = {r.dstOffset, r.length};
    std::memcpy(cursor, pair, sizeof pair);
    cursor += sizeof pair;
  }
  wire::FrameHeader end = {commit ? wire::FrameType::Commit : wire::FrameType::Flush, 0, transferId, 0,
                           commit ? declared : 0};
  std::memcpy(cursor, &end, sizeof end);
  return out;
}

std::vector<Range> rangesFromPairs(const uint64_t* pairs, size_t count) {
  std::vector<Range> ranges(count);
  for (size_t i = 0; i < count; ++i) ranges[i] = {0, pairs[2 * i], pairs[2 * i + 1]};
  return ranges;
}

std::vector<RdmaWrite> planRdmaWrites(const std::vector<Range>& ranges, uint64_t maxBytes, uint32_t signalEvery) {
  std::vector<RdmaWrite> writes;
  for (const Range& r : ranges) {
    for (uint64_t done = 0; done < r.length; done += maxBytes) {
      const uint64_t length = std::min(maxBytes, r.length - done);
      writes.push_back({r.srcOffset + done, r.dstOffset + done, uint32_t(length), false});
      if (signalEvery > 0 && writes.size() % signalEvery == 0) writes.back().signaled = true;
    }
  }
  if (!writes.empty()) writes.back().signaled = true;
  return writes;
}

}  // namespace kvt
