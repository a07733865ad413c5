// The GPU seam of the transfer engine: streams, events, pinned and device buffers, batched copies
// of many ranges, and the pool's export / import for CUDA IPC. cuda/device_cuda.cu implements it
// in the CUDA build (KVT_WITH_CUDA); device_none.cc in the CPU build, where built() is false and
// every constructor throws a Device error that names the rebuild. All failures throw KvtError
// (ErrorCode::Device) carrying the file, line, call and CUDA's own message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "errors.h"
#include "spec.h"

namespace kvt::device {

bool built();
// Why a device pool cannot be used in this build ("" in the CUDA build).
std::string unavailableReason();

// Copy strategies for many small ranges (bench/kvtransfer/gpu_run.sh times each):
//   Kernel    one launch copies up to kTilesPerLaunch tiles of <= 64 KiB (SMs do the copy)
//   Batch     cudaMemcpyBatchAsync: every range in one call, on the copy engines
//   PerRange  one cudaMemcpyAsync per range (the plain baseline)
enum class CopyMode { Kernel, Batch, PerRange };
const char* copyModeName(CopyMode mode);
CopyMode parseCopyMode(const std::string& name);  // throws std::invalid_argument
// Device-to-device (cuda_ipc, nccl gather / scatter): TANDEM_KVT_COPY_D2D, default kernel.
CopyMode defaultDeviceCopyMode();
// Device <-> pinned host (TCP staging): TANDEM_KVT_COPY_STAGING, default batch.
CopyMode defaultStagingCopyMode();

// One range to copy; addresses are absolute (unified addressing: device, mapped peer or pinned host).
struct Copy {
  uint64_t dst;
  uint64_t src;
  uint64_t length;
};

int deviceCount();
void setDevice(int ordinal);  // on the calling thread (the others restore the caller's device)
struct Uuid {
  uint8_t bytes[16];
};
Uuid deviceUuid(int ordinal);
int ordinalOfUuid(const uint8_t uuid[16]);  // -1 when that GPU is not visible in this process
std::string uuidText(const uint8_t uuid[16]);
// Whether a kernel on `from` can write memory of `to` (same GPU, or peer access). Why not in *why.
bool canReach(int from, int to, std::string* why);
// Lets kernels on `from` write memory of `to` in this process (cudaDeviceEnablePeerAccess).
void enablePeerAccess(int from, int to);
// Throws unless [base, base + length) is device memory of region.device.
void checkDevicePool(const Region& region);

class Stream {
 public:
  explicit Stream(int ordinal);  // a non-blocking stream on that GPU
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  int ordinal() const { return ordinal_; }
  void* handle() const { return stream_; }  // cudaStream_t
  // Enqueues the copies (ranges of any length; split into tiles for the kernel).
  void copy(const Copy* copies, size_t count, CopyMode mode);
  void waitEvent(void* cudaEvent);  // cudaStreamWaitEvent
  void synchronize();

 private:
  int ordinal_;
  void* stream_ = nullptr;
};

class Event {
 public:
  explicit Event(int ordinal);  // blocking-sync, timing off
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(Stream& stream);
  void synchronize() const;  // blocks the calling (transport) thread, yielding the CPU
  bool ready() const;  // throws if the work behind it failed
  void* handle() const { return event_; }

 private:
  int ordinal_;
  void* event_ = nullptr;
};

// Page-locked host memory, mapped for the device (kernels may read and write it), allocated in
// the context of GPU `ordinal`.
class PinnedBuffer {
 public:
  PinnedBuffer(int ordinal, size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

class DeviceBuffer {
 public:
  DeviceBuffer(int ordinal, size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// The receiver's pool as another process maps it: a cudaIpcMemHandle_t of the cudaMalloc
// allocation that holds it, and the pool's offset in that allocation.
struct IpcExport {
  bool ok = false;
  uint8_t handle[64] = {};
  uint64_t offset = 0;
  std::string reason;  // why not, when !ok
};
IpcExport exportPool(const Region& region);

// An exported pool mapped into this process on GPU `ordinal` (peer access enabled when the pool
// lives on another GPU); unmapped on destruction.
class IpcMapping {
 public:
  IpcMapping(int ordinal, const uint8_t handle[64]);
  ~IpcMapping();
  IpcMapping(const IpcMapping&) = delete;
  IpcMapping& operator=(const IpcMapping&) = delete;
  uint8_t* base() const { return base_; }

 private:
  int ordinal_;
  uint8_t* base_ = nullptr;
};

}  // namespace kvt::device
