// The control wire format (TCP). Little-endian fixed-size structs (both ends run this code on
// x86-64 / arm64). A connection starts with Hello -> HelloReply (the reply carries the receiver's
// Capabilities), then carries frames: each FrameHeader is followed by `length` payload bytes for
// Data, by the payload its type names for Select / SelectAck / NcclData, and by nothing otherwise.
//
// Which transport moves the bytes is the sender's choice (choice.h), told on its first connection
// with Select. Without a Select a connection is a TCP stream (Data frames). cuda_ipc and rdma are
// one-sided: the sender asks for a grant per transfer (Begin -> Grant), writes into the receiver's
// pool itself, reports what it wrote (Written) and commits; the receiver revokes a grant with
// Release and hears ReleaseAck once no write of it is in flight. nccl is two-sided: NcclData
// announces ranges whose bytes follow through the NCCL communicator, not the socket.
#pragma once

#include <cstdint>

namespace kvt::wire {

constexpr uint32_t kMagic = 0x5456'4B54;  // "TKVT"
constexpr uint32_t kVersion = 2;

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
  uint32_t deviceKind;  // the sender's pool: kDeviceHost or kDeviceCuda
  uint32_t reserved;
};

constexpr uint32_t kDeviceHost = 0;
constexpr uint32_t kDeviceCuda = 1;

// What the receiver offers a sender (zeroed: a host pool, TCP only).
enum CapabilityFlags : uint32_t {
  kCapCudaIpc = 1u << 0,  // ipcHandle maps the pool (cudaIpcOpenMemHandle)
  kCapNccl = 1u << 1,     // libnccl.so.2 loads here
  kCapRdma = 1u << 2,     // an RDMA device and the pool registered with it (rdmaDevice)
};

struct Capabilities {
  char hostId[128];        // "<boot id>/<hostname>": equal on two processes of one OS instance
  uint32_t pid;
  uint32_t deviceKind;     // kDeviceHost or kDeviceCuda
  int32_t deviceOrdinal;   // in the receiver's process (its CUDA_VISIBLE_DEVICES)
  uint32_t flags;          // CapabilityFlags
  uint8_t deviceUuid[16];  // identifies the GPU across processes
  uint64_t baseAddress;    // the pool's address in the receiver's process
  uint64_t ipcOffset;      // pool base - base of the cudaMalloc allocation the handle names
  uint8_t ipcHandle[64];   // cudaIpcMemHandle_t of that allocation
  char ipcReason[128];     // why kCapCudaIpc is off (empty when on)
  char ncclReason[128];
  char rdmaReason[128];
  char rdmaDevice[64];     // ibverbs device name
};

enum class HelloStatus : uint32_t { Ok = 0, Mismatch = 1, BadVersion = 2 };

struct HelloReply {
  uint32_t magic;
  HelloStatus status;
  uint32_t numPages;  // the receiver's pool, so the sender can address its pages
  uint32_t reserved;
  uint64_t regionBytes;
  char reason[256];
  Capabilities caps;
};

// TransportKind values on the wire (Select.offset): same numbers as kvt::TransportKind.
enum class FrameType : uint32_t {
  Data = 1,        // offset: destination byte offset; length: payload bytes that follow
  Flush = 2,       // ask for FlushAck once everything before it has landed
  FlushAck = 3,    // receiver -> sender; length: bytes landed via this stream; offset: an AckStatus
  Commit = 4,      // length: total bytes the sender wrote for this transfer (all streams)
  CommitAck = 5,   // receiver -> sender; offset: an AckStatus; length: bytes counted
  Abort = 6,       // the sender gives the transfer up (after its last write of it finished)
  Select = 7,      // sender -> receiver, first connection: offset: TransportKind; length: payload bytes
  SelectAck = 8,   // receiver -> sender: offset: 0 ok, 1 refused; length: payload bytes (reason or peer info)
  Begin = 9,       // one-sided: the sender asks whether it may write this transfer
  Grant = 10,      // receiver -> sender: offset: kAckOk (granted) or kAckNotExpected
  Written = 11,    // one-sided: length: bytes the sender's writes landed (finished) for this transfer
  Release = 12,    // receiver -> sender: the grant is revoked; answer once no write of it is in flight
  ReleaseAck = 13, // sender -> receiver: no write of the transfer is in flight, none will start
  NcclData = 14,   // offset: number of ranges; length: their bytes; followed by [dstOffset, length] u64 pairs
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

// NCCL moves an announcement's bytes in chunks of this size (the last one shorter), packed in
// range order; both sides cut the same chunks.
constexpr uint64_t kNcclChunkBytes = 16ull << 20;
// Ranges one NcclData frame may announce (bounds the receiver's read).
constexpr uint64_t kMaxNcclRanges = 1u << 20;

// RDMA queue pair endpoints, exchanged in Select (sender's) and SelectAck (receiver's).
struct RdmaEndpoint {
  uint32_t qpn;
  uint32_t psn;
  uint16_t lid;
  uint8_t portNum;
  uint8_t mtu;  // ibv_mtu
  uint32_t rkey;        // receiver: the pool's remote key
  uint8_t gid[16];
  uint64_t remoteBase;  // receiver: the pool's address as registered
};

static_assert(sizeof(FrameHeader) == 32);
static_assert(sizeof(Hello) == 192);
static_assert(sizeof(Capabilities) == 688);
static_assert(sizeof(HelloReply) == 280 + 688);
static_assert(sizeof(RdmaEndpoint) == 40);

}  // namespace kvt::wire
