// Pure planning of how ranges move in pieces: staging chunks (TCP with a device pool, NCCL), the
// receiver's ledger of staged bytes, and RDMA work requests. No device, no socket: unit-tested by
// test/unit/plan_test.cc.
#pragma once

#include <cstdint>
#include <vector>

#include "transport.h"

namespace kvt {

// A piece of a range that sits at chunkOffset in its chunk.
struct Piece {
  uint64_t srcOffset;
  uint64_t dstOffset;
  uint64_t length;
  uint64_t chunkOffset;
};

struct Chunk {
  uint64_t bytes = 0;
  std::vector<Piece> pieces;
};

// Packs the ranges, in order, into consecutive chunks of chunkBytes (the last may be shorter); a
// range crossing a chunk boundary is split. Both NCCL ends cut the same chunks from the same ranges.
std::vector<Chunk> planChunks(const std::vector<Range>& ranges, uint64_t chunkBytes);

// Which frames' bytes sit in a staging buffer until its device copy has finished. A transfer's
// bytes count, and its frames end, only once the copy of their last piece finished: the receiver
// acknowledges (and lets a released transfer go quiet) only then.
class LandingLedger {
 public:
  struct Settled {
    uint64_t transferId;
    uint64_t bytes;
    int framesEnded;
  };
  void add(uint64_t transferId, uint64_t bytes, bool frameEnd);
  // Everything added since the last settle, merged per transfer in first-seen order; clears.
  std::vector<Settled> settle();
  bool empty() const { return pieces_.empty(); }

 private:
  struct Entry {
    uint64_t transferId;
    uint64_t bytes;
    bool frameEnd;
  };
  std::vector<Entry> pieces_;
};

// An NCCL announcement on the control connection: NcclData {ranges, total bytes} followed by the
// ranges as [dstOffset, length] u64 pairs, then the Flush (or the Commit with the transfer's
// declared total) the receiver answers once the announced bytes landed.
std::vector<uint8_t> ncclAnnouncement(uint64_t transferId, const std::vector<Range>& ranges, bool commit,
                                      uint64_t declared);
// The receiver's view of announced pairs: ranges with srcOffset 0 (the bytes come packed).
std::vector<Range> rangesFromPairs(const uint64_t* pairs, size_t count);

// One RDMA WRITE: `length` bytes from the local region's offset to the remote region's offset.
struct RdmaWrite {
  uint64_t localOffset;
  uint64_t remoteOffset;
  uint32_t length;
  bool signaled;  // asks for a completion (every signalEvery-th and the last)
};

// Work requests for a send: ranges split at maxBytes (a NIC's max message size), in order.
std::vector<RdmaWrite> planRdmaWrites(const std::vector<Range>& ranges, uint64_t maxBytes, uint32_t signalEvery);

}  // namespace kvt
