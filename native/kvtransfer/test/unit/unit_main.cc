// Unit tests of the transfer engine's parts that need no GPU, NIC or peer: staging chunk plans,
// the receiver's staging ledger, the NCCL announcement framing (and that both NCCL ends cut the
// same chunks), RDMA work-request planning, and how NCCL / RDMA report themselves unavailable.
// Prints one `ok <name>` / `not ok <name>: <why>` line per check and a JSON `probe` line; exits 1
// on any failure. Run by test/unit.test.ts (which sets TANDEM_NCCL_LIBRARY to a missing file).
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "nccl_api.h"
#include "plan.h"
#include "rdma.h"
#include "wire.h"

using namespace kvt;

static int failures = 0;

static void check(const char* name, bool ok, const std::string& why = "") {
  if (ok) std::printf("ok %s\n", name);
  else std::printf("not ok %s: %s\n", name, why.c_str());
  failures += ok ? 0 : 1;
}

static std::string jsonText(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Every byte of every range appears exactly once, in order, at consecutive chunk positions.
static std::string chunksCover(const std::vector<Range>& ranges, const std::vector<Chunk>& chunks, uint64_t chunkBytes) {
  std::vector<std::pair<uint64_t, uint64_t>> expected;  // (src, dst) per byte, small inputs only
  for (const Range& r : ranges)
    for (uint64_t i = 0; i < r.length; ++i) expected.push_back({r.srcOffset + i, r.dstOffset + i});
  size_t at = 0;
  for (size_t k = 0; k < chunks.size(); ++k) {
    const Chunk& c = chunks[k];
    if (c.bytes > chunkBytes) return "chunk " + std::to_string(k) + " is larger than the chunk size";
    if (k + 1 < chunks.size() && c.bytes != chunkBytes) return "chunk " + std::to_string(k) + " is short";
    uint64_t inChunk = 0;
    for (const Piece& p : c.pieces) {
      if (p.chunkOffset != inChunk) return "piece not packed at its chunk offset";
      for (uint64_t i = 0; i < p.length; ++i, ++at) {
        if (at >= expected.size()) return "more bytes planned than asked";
        if (expected[at] != std::pair{p.srcOffset + i, p.dstOffset + i}) return "byte out of order";
      }
      inChunk += p.length;
    }
    if (inChunk != c.bytes) return "chunk bytes disagree with its pieces";
  }
  return at == expected.size() ? "" : "fewer bytes planned than asked";
}

static void testChunks() {
  std::vector<Range> ranges = {{0, 100, 10}, {50, 0, 7}, {200, 300, 25}, {7, 7, 1}};
  for (uint64_t chunkBytes : {1ull, 4ull, 8ull, 16ull, 43ull, 1000ull}) {
    std::vector<Chunk> chunks = planChunks(ranges, chunkBytes);
    std::string why = chunksCover(ranges, chunks, chunkBytes);
    check(("planChunks covers every byte once, chunk " + std::to_string(chunkBytes)).c_str(), why.empty(), why);
  }
  check("planChunks of nothing is no chunk", planChunks({}, 8).empty());
  // A range larger than several chunks is split across them.
  std::vector<Chunk> big = planChunks({{0, 0, 100}}, 32);
  check("a long range spans chunks of 32, 32, 32, 4",
        big.size() == 4 && big[0].bytes == 32 && big[3].bytes == 4 && big[3].pieces[0].srcOffset == 96);

  // Randomised: both NCCL ends cut the same chunks from the sender's ranges and the receiver's
  // view of them (srcOffset 0, from the announced pairs).
  std::mt19937_64 random(7);
  bool same = true;
  std::string why;
  for (int round = 0; round < 200 && same; ++round) {
    std::vector<Range> senderRanges;
    std::vector<uint64_t> pairs;
    for (int i = int(random() % 40); i >= 0; --i) {
      Range r = {random() % 4096, random() % 4096, 1 + random() % 3000};
      senderRanges.push_back(r);
      pairs.push_back(r.dstOffset);
      pairs.push_back(r.length);
    }
    const uint64_t chunkBytes = 1 + random() % 5000;
    std::vector<Chunk> a = planChunks(senderRanges, chunkBytes);
    std::vector<Chunk> b = planChunks(rangesFromPairs(pairs.data(), senderRanges.size()), chunkBytes);
    same = a.size() == b.size();
    for (size_t k = 0; same && k < a.size(); ++k) {
      same = a[k].bytes == b[k].bytes && a[k].pieces.size() == b[k].pieces.size();
      for (size_t p = 0; same && p < a[k].pieces.size(); ++p)
        same = a[k].pieces[p].dstOffset == b[k].pieces[p].dstOffset && a[k].pieces[p].length == b[k].pieces[p].length &&
               a[k].pieces[p].chunkOffset == b[k].pieces[p].chunkOffset;
    }
    if (!same) why = "round " + std::to_string(round);
  }
  check("both NCCL ends cut the same chunks (200 random announcements)", same, why);
}

static void testLedger() {
  LandingLedger ledger;
  check("a new ledger is empty", ledger.empty());
  ledger.add(7, 100, false);  // first piece of a frame of transfer 7
  ledger.add(9, 50, true);
  ledger.add(7, 30, true);    // its last piece
  ledger.add(7, 10, false);   // a next frame of 7, not ended in this buffer
  std::vector<LandingLedger::Settled> settled = ledger.settle();
  check("the ledger merges per transfer in first-seen order",
        settled.size() == 2 && settled[0].transferId == 7 && settled[0].bytes == 140 && settled[0].framesEnded == 1 &&
            settled[1].transferId == 9 && settled[1].bytes == 50 && settled[1].framesEnded == 1);
  check("settling empties the ledger", ledger.empty() && ledger.settle().empty());
}

static void testNcclFraming() {
  std::vector<Range> ranges = {{4096, 8192, 512}, {0, 1024, 256}};
  std::vector<uint8_t> bytes = ncclAnnouncement(42, ranges, false, 0);
  check("an announcement is a header, the pairs and a trailing frame",
        bytes.size() == 2 * sizeof(wire::FrameHeader) + 4 * sizeof(uint64_t));
  wire::FrameHeader head, tail;
  uint64_t pairs[4];
  std::memcpy(&head, bytes.data(), sizeof head);
  std::memcpy(pairs, bytes.data() + sizeof head, sizeof pairs);
  std::memcpy(&tail, bytes.data() + sizeof head + sizeof pairs, sizeof tail);
  check("NcclData names the transfer, the number of ranges and their bytes",
        head.type == wire::FrameType::NcclData && head.transferId == 42 && head.offset == 2 && head.length == 768);
  check("the pairs are [dstOffset, length], srcOffset stays local",
        pairs[0] == 8192 && pairs[1] == 512 && pairs[2] == 1024 && pairs[3] == 256);
  check("a send that does not commit ends with a Flush",
        tail.type == wire::FrameType::Flush && tail.transferId == 42 && tail.length == 0);
  std::vector<uint8_t> last = ncclAnnouncement(42, ranges, true, 5000);
  std::memcpy(&tail, last.data() + last.size() - sizeof tail, sizeof tail);
  check("a committing send ends with a Commit of the declared total",
        tail.type == wire::FrameType::Commit && tail.length == 5000);
  std::vector<uint8_t> empty = ncclAnnouncement(1, {}, true, 0);
  std::memcpy(&head, empty.data(), sizeof head);
  check("an empty send still announces (and commits)", head.offset == 0 && head.length == 0 &&
                                                           empty.size() == 2 * sizeof(wire::FrameHeader));
}

static void testRdmaPlan() {
  std::vector<RdmaWrite> writes = planRdmaWrites({{0, 1000, 250}, {4096, 0, 100}}, 100, 2);
  bool splits = writes.size() == 4 && writes[0].length == 100 && writes[1].localOffset == 100 &&
                writes[1].remoteOffset == 1100 && writes[2].length == 50 && writes[3].localOffset == 4096 &&
                writes[3].length == 100;
  check("RDMA writes split ranges at the message size, in order", splits);
  check("every 2nd write and the last are signaled",
        writes.size() == 4 && !writes[0].signaled && writes[1].signaled && !writes[2].signaled && writes[3].signaled);
  std::vector<RdmaWrite> one = planRdmaWrites({{0, 0, 10}}, 64 << 20, 64);
  check("a single write is signaled", one.size() == 1 && one[0].signaled && one[0].length == 10);
  check("no range, no write", planRdmaWrites({}, 100, 2).empty());
}

int main() {
  testChunks();
  testLedger();
  testNcclFraming();
  testRdmaPlan();
  // How this machine reports NCCL and RDMA (the test asserts the wording of "unavailable").
  std::string ncclWhy;
  const nccl::Api* api = nccl::load(&ncclWhy);
  rdma::Probe probe = rdma::probe();
  std::printf("probe {\"ncclLoaded\":%s,\"ncclReason\":%s,\"rdmaBuilt\":%s,\"rdmaOk\":%s,\"rdmaReason\":%s}\n",
              api ? "true" : "false", jsonText(ncclWhy).c_str(), rdma::built() ? "true" : "false",
              probe.ok ? "true" : "false", jsonText(probe.reason).c_str());
  std::printf("%s\n", failures == 0 ? "all passed" : "FAILED");
  return failures == 0 ? 0 : 1;
}
