// The GPU seam (core/device.h) on CUDA: streams, events, buffers, the batched range copy, and the
// pool's IPC export / import. Every failed call throws KvtError(Device) with file, line, call and
// CUDA's message.
#include <cuda.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "device.h"

namespace kvt::device {
namespace {

[[noreturn]] void throwCuda(cudaError_t status, const char* call, const char* file, int line) {
  throw KvtError(ErrorCode::Device, std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                                        cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}

#define KVT_CUDA(call)                                                         \
  do {                                                                         \
    cudaError_t kvtStatus_ = (call);                                           \
    if (kvtStatus_ != cudaSuccess) throwCuda(kvtStatus_, #call, __FILE__, __LINE__); \
  } while (0)

// Tiles of at most kTileBytes, up to kTilesPerLaunch per launch, passed by value in the kernel's
// parameters (20 KiB; CUDA 12.1+ allows 32 KiB): no descriptor upload, the host buffer is free
// as soon as the launch returns.
constexpr uint64_t kTileBytes = 64 << 10;
constexpr int kTilesPerLaunch = 1024;
constexpr int kCopyThreads = 512;

struct TileBatch {
  uint64_t dst[kTilesPerLaunch];
  uint64_t src[kTilesPerLaunch];
  uint32_t length[kTilesPerLaunch];
  uint32_t count;
};
static_assert(sizeof(TileBatch) < 32000);

// One block per tile; 16-byte streaming loads and stores when the tile allows them (KV pages
// always do), four in flight per thread.
__global__ void __launch_bounds__(kCopyThreads) copyTiles(const __grid_constant__ TileBatch batch) {
  const uint32_t t = blockIdx.x;
  const uint64_t dstAddress = batch.dst[t];
  const uint64_t srcAddress = batch.src[t];
  const uint32_t n = batch.length[t];
  if (((dstAddress | srcAddress | n) & 15) == 0) {
    const uint4* src = reinterpret_cast<const uint4*>(srcAddress);
    uint4* dst = reinterpret_cast<uint4*>(dstAddress);
    const uint32_t words = n / 16;
    const uint32_t step = blockDim.x;
    uint32_t i = threadIdx.x;
    for (; i + 3 * step < words; i += 4 * step) {
      uint4 a = __ldcs(src + i), b = __ldcs(src + i + step), c = __ldcs(src + i + 2 * step),
            d = __ldcs(src + i + 3 * step);
      __stcs(dst + i, a);
      __stcs(dst + i + step, b);
      __stcs(dst + i + 2 * step, c);
      __stcs(dst + i + 3 * step, d);
    }
    for (; i < words; i += step) __stcs(dst + i, __ldcs(src + i));
  } else {
    const uint8_t* src = reinterpret_cast<const uint8_t*>(srcAddress);
    uint8_t* dst = reinterpret_cast<uint8_t*>(dstAddress);
    for (uint32_t i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src[i];
  }
}

void copyWithKernel(const Copy* copies, size_t count, cudaStream_t stream) {
  static thread_local TileBatch batch;  // 20 KiB: off the (transport thread's) stack
  batch.count = 0;
  auto launch = [&] {
    if (batch.count == 0) return;
    copyTiles<<<batch.count, kCopyThreads, 0, stream>>>(batch);
    KVT_CUDA(cudaGetLastError());
    batch.count = 0;
  };
  for (size_t i = 0; i < count; ++i) {
    for (uint64_t done = 0; done < copies[i].length; done += kTileBytes) {
      if (batch.count == kTilesPerLaunch) launch();
      batch.dst[batch.count] = copies[i].dst + done;
      batch.src[batch.count] = copies[i].src + done;
      batch.length[batch.count] = uint32_t(std::min(kTileBytes, copies[i].length - done));
      batch.count++;
    }
  }
  launch();
}

void copyPerRange(const Copy* copies, size_t count, cudaStream_t stream) {
  for (size_t i = 0; i < count; ++i)
    KVT_CUDA(cudaMemcpyAsync(reinterpret_cast<void*>(copies[i].dst), reinterpret_cast<const void*>(copies[i].src),
                             copies[i].length, cudaMemcpyDefault, stream));
}

void copyBatched(const Copy* copies, size_t count, cudaStream_t stream) {
#if CUDART_VERSION >= 13000
  constexpr size_t kPerCall = 4096;
  static thread_local std::vector<void*> dsts;
  static thread_local std::vector<const void*> srcs;
  static thread_local std::vector<size_t> sizes;
  cudaMemcpyAttributes attributes = {};
  attributes.srcAccessOrder = cudaMemcpySrcAccessOrderStream;
  size_t attributeIndex = 0;
  for (size_t begin = 0; begin < count; begin += kPerCall) {
    size_t n = std::min(kPerCall, count - begin);
    dsts.resize(n);
    srcs.resize(n);
    sizes.resize(n);
    for (size_t i = 0; i < n; ++i) {
      dsts[i] = reinterpret_cast<void*>(copies[begin + i].dst);
      srcs[i] = reinterpret_cast<const void*>(copies[begin + i].src);
      sizes[i] = copies[begin + i].length;
    }
    KVT_CUDA(cudaMemcpyBatchAsync(dsts.data(), srcs.data(), sizes.data(), n, &attributes, &attributeIndex, 1, stream));
  }
#else
  copyPerRange(copies, count, stream);
#endif
}

// Makes `ordinal` current for the scope and restores the caller's device after it: these calls
// run on threads the transport does not own (the JS thread, libuv's pool).
class ScopedDevice {
 public:
  explicit ScopedDevice(int ordinal) {
    KVT_CUDA(cudaGetDevice(&previous_));
    // Set even when it is already the current device: since CUDA 12 cudaSetDevice also makes the
    // primary context current on this thread, which the driver-API calls here
    // (cuMemGetAddressRange) need; on a thread that never touched CUDA they failed with 201.
    KVT_CUDA(cudaSetDevice(ordinal));
    if (previous_ == ordinal) previous_ = -1;
  }
  ~ScopedDevice() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }

 private:
  int previous_ = -1;
};

}  // namespace

bool built() { return true; }
std::string unavailableReason() { return ""; }

int deviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" / "no driver" status
    return 0;
  }
  return count;
}

void setDevice(int ordinal) { KVT_CUDA(cudaSetDevice(ordinal)); }

Uuid deviceUuid(int ordinal) {
  static std::mutex mutex;
  static std::unordered_map<int, Uuid> cache;
  std::lock_guard lock(mutex);
  if (auto it = cache.find(ordinal); it != cache.end()) return it->second;
  cudaDeviceProp properties;
  KVT_CUDA(cudaGetDeviceProperties(&properties, ordinal));
  Uuid uuid;
  std::memcpy(uuid.bytes, properties.uuid.bytes, 16);
  cache[ordinal] = uuid;
  return uuid;
}

int ordinalOfUuid(const uint8_t uuid[16]) {
  for (int i = 0, n = deviceCount(); i < n; ++i)
    if (std::memcmp(deviceUuid(i).bytes, uuid, 16) == 0) return i;
  return -1;
}

std::string uuidText(const uint8_t uuid[16]) {
  char text[48];
  std::snprintf(text, sizeof text, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", uuid[0],
                uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7], uuid[8], uuid[9], uuid[10], uuid[11],
                uuid[12], uuid[13], uuid[14], uuid[15]);
  return text;
}

bool canReach(int from, int to, std::string* why) {
  if (from == to) return true;
  int possible = 0;
  cudaError_t status = cudaDeviceCanAccessPeer(&possible, from, to);
  if (status != cudaSuccess) {
    *why = std::string("cudaDeviceCanAccessPeer: ") + cudaGetErrorString(status);
    return false;
  }
  if (!possible) *why = "no peer access from cuda:" + std::to_string(from) + " to cuda:" + std::to_string(to);
  return possible != 0;
}

void enablePeerAccess(int from, int to) {
  if (from == to) return;
  ScopedDevice scope(from);
  cudaError_t status = cudaDeviceEnablePeerAccess(to, 0);
  if (status == cudaErrorPeerAccessAlreadyEnabled) {
    cudaGetLastError();
    return;
  }
  KVT_CUDA(status);
}

void checkDevicePool(const Region& region) {
  auto describe = [&](const uint8_t* address) {
    cudaPointerAttributes attributes = {};
    cudaError_t status = cudaPointerGetAttributes(&attributes, address);
    if (status != cudaSuccess) {
      cudaGetLastError();
      return std::string("cudaPointerGetAttributes failed: ") + cudaGetErrorString(status);
    }
    if (attributes.type != cudaMemoryTypeDevice) return std::string("it is not device memory");
    if (attributes.device != region.device)
      return "it is memory of cuda:" + std::to_string(attributes.device) + ", not cuda:" + std::to_string(region.device);
    return std::string();
  };
  if (region.length == 0) throw KvtError(ErrorCode::OutOfBounds, "the device pool is empty");
  std::string why = describe(region.base);
  if (why.empty()) why = describe(region.base + region.length - 1);
  if (!why.empty()) {
    char address[32];
    std::snprintf(address, sizeof address, "%p", static_cast<void*>(region.base));
    throw KvtError(ErrorCode::Device, std::string("the pool at ") + address + " (" + std::to_string(region.length) +
                                          " bytes) is not usable on cuda:" + std::to_string(region.device) + ": " + why);
  }
}

Stream::Stream(int ordinal) : ordinal_(ordinal) {
  ScopedDevice scope(ordinal);
  cudaStream_t stream;
  KVT_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  stream_ = stream;
}

Stream::~Stream() {
  if (stream_ == nullptr) return;
  cudaStreamSynchronize(static_cast<cudaStream_t>(stream_));
  cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

void Stream::copy(const Copy* copies, size_t count, CopyMode mode) {
  if (count == 0) return;
  KVT_CUDA(cudaSetDevice(ordinal_));
  auto stream = static_cast<cudaStream_t>(stream_);
  switch (mode) {
    case CopyMode::Kernel: copyWithKernel(copies, count, stream); return;
    case CopyMode::Batch: copyBatched(copies, count, stream); return;
    case CopyMode::PerRange: copyPerRange(copies, count, stream); return;
  }
}

void Stream::waitEvent(void* cudaEvent) {
  KVT_CUDA(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream_), static_cast<cudaEvent_t>(cudaEvent), 0));
}

void Stream::synchronize() { KVT_CUDA(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_))); }

Event::Event(int ordinal) : ordinal_(ordinal) {
  ScopedDevice scope(ordinal);
  cudaEvent_t event;
  KVT_CUDA(cudaEventCreateWithFlags(&event, cudaEventDisableTiming | cudaEventBlockingSync));
  event_ = event;
}

Event::~Event() {
  if (event_ != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
}

void Event::record(Stream& stream) {
  KVT_CUDA(cudaEventRecord(static_cast<cudaEvent_t>(event_), static_cast<cudaStream_t>(stream.handle())));
}

// Spins briefly (a transfer's copies often end within microseconds of the wait), then sleeps in
// the driver (the event is blocking-sync), so a long wait burns no core.
void Event::synchronize() const {
  const auto spinUntil = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
  while (std::chrono::steady_clock::now() < spinUntil) {
    if (ready()) return;
    std::this_thread::yield();
  }
  KVT_CUDA(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)));
}

bool Event::ready() const {
  cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(event_));
  if (status == cudaErrorNotReady) return false;
  KVT_CUDA(status);
  return true;
}

PinnedBuffer::PinnedBuffer(int ordinal, size_t bytes) : size_(bytes) {
  ScopedDevice scope(ordinal);  // allocated in (and mapped for) that GPU's context
  void* data = nullptr;
  KVT_CUDA(cudaHostAlloc(&data, bytes, cudaHostAllocPortable | cudaHostAllocMapped));
  data_ = static_cast<uint8_t*>(data);
}

PinnedBuffer::~PinnedBuffer() {
  if (data_ != nullptr) cudaFreeHost(data_);
}

DeviceBuffer::DeviceBuffer(int ordinal, size_t bytes) : size_(bytes) {
  ScopedDevice scope(ordinal);
  void* data = nullptr;
  KVT_CUDA(cudaMalloc(&data, bytes));
  data_ = static_cast<uint8_t*>(data);
}

DeviceBuffer::~DeviceBuffer() {
  if (data_ != nullptr) cudaFree(data_);
}

IpcExport exportPool(const Region& region) {
  IpcExport out;
  try {
    ScopedDevice scope(region.device);
    // The handle names a whole cudaMalloc allocation: find the one holding the pool.
    using GetAddressRange = CUresult (*)(CUdeviceptr*, size_t*, CUdeviceptr);
    void* entry = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    KVT_CUDA(cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &entry, 12000, cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || entry == nullptr) {
      out.reason = "the driver has no cuMemGetAddressRange";
      return out;
    }
    CUdeviceptr allocationBase = 0;
    size_t allocationBytes = 0;
    CUresult result = reinterpret_cast<GetAddressRange>(entry)(&allocationBase, &allocationBytes,
                                                               reinterpret_cast<CUdeviceptr>(region.base));
    if (result != CUDA_SUCCESS) {
      out.reason = "cuMemGetAddressRange failed (" + std::to_string(int(result)) + "): the pool is not one allocation";
      return out;
    }
    const uint64_t offset = reinterpret_cast<uint64_t>(region.base) - allocationBase;
    if (offset + region.length > allocationBytes) {
      out.reason = "the pool spans more than one allocation (" + std::to_string(allocationBytes - offset) +
                   " bytes left in its allocation, pool is " + std::to_string(region.length) + ")";
      return out;
    }
    cudaIpcMemHandle_t handle;
    cudaError_t status = cudaIpcGetMemHandle(&handle, reinterpret_cast<void*>(allocationBase));
    if (status != cudaSuccess) {
      cudaGetLastError();
      out.reason = std::string("cudaIpcGetMemHandle failed: ") + cudaGetErrorString(status) +
                   " (the pool must come from cudaMalloc)";
      return out;
    }
    static_assert(sizeof handle == 64);
    std::memcpy(out.handle, &handle, 64);
    out.offset = offset;
    out.ok = true;
  } catch (const KvtError& error) {
    out.reason = error.what();
  }
  return out;
}

IpcMapping::IpcMapping(int ordinal, const uint8_t handle[64]) : ordinal_(ordinal) {
  ScopedDevice scope(ordinal);
  cudaIpcMemHandle_t ipcHandle;
  std::memcpy(&ipcHandle, handle, 64);
  void* base = nullptr;
  KVT_CUDA(cudaIpcOpenMemHandle(&base, ipcHandle, cudaIpcMemLazyEnablePeerAccess));
  base_ = static_cast<uint8_t*>(base);
}

IpcMapping::~IpcMapping() {
  if (base_ == nullptr) return;
  try {
    ScopedDevice scope(ordinal_);
    cudaIpcCloseMemHandle(base_);
  } catch (const KvtError&) {
  }
}

}  // namespace kvt::device
