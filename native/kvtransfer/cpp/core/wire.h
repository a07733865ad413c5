// The TCP wire format. Little-endian fixed-size structs (both ends run this code on x86-64 /
// arm64). A connection starts with Hello -> HelloReply, then carries frames: each FrameHeader
// is followed by `length` payload bytes for Data and by nothing otherwise.
#pragma once

#include <cstdint>

namespace kvt::wire {

constexpr uint32_t kMagic = 0x5456'4B54;  // "TKVT"
constexpr uint32_t kVersion = 1;

struct Hello {
  uint32_t magic;
  uint32_t version;
  uint32_t numLayers;
  uint32_t numKvHeads;
  uint32_t headDim;
  uint32_t pageSize;
  uint32_t numPages;
  uint32_t streamIndex;
  uint64_t sessionId;  // one per sender; its streams share it
  char dtype[16];
  char model[128];
};

enum class HelloStatus : uint32_t { Ok = 0, Mismatch = 1, BadVersion = 2 };

struct HelloReply {
  uint32_t magic;
  HelloStatus status;
  uint32_t numPages;  // the receiver's pool, so the sender can address its pages
  uint32_t reserved;
  uint64_t regionBytes;
  char reason[256];
};

enum class FrameType : uint32_t {
  Data = 1,       // offset: destination byte offset; length: payload bytes that follow
  Flush = 2,      // ask for FlushAck once everything before it has landed
  FlushAck = 3,   // receiver -> sender; length: bytes landed via this stream; offset: an AckStatus
  Commit = 4,     // length: total bytes the sender wrote for this transfer (all streams)
  CommitAck = 5,  // receiver -> sender; offset: an AckStatus; length: bytes counted
  Abort = 6,      // the sender gives the transfer up
};

enum AckStatus : uint64_t {
  kAckOk = 0,
  kAckCountMismatch = 1,
  kAckNotExpected = 2,  // the receiver does not expect (or released) this transfer
};

struct FrameHeader {
  FrameType type;
  uint32_t reserved;
  uint64_t transferId;
  uint64_t offset;
  uint64_t length;
};

static_assert(sizeof(FrameHeader) == 32);
static_assert(sizeof(Hello) == 184);
static_assert(sizeof(HelloReply) == 280);

}  // namespace kvt::wire
