// The GPU seam in the CPU-only build: no device is visible, and anything that would touch one
// fails with a Device error naming the CUDA build.
#include "device.h"

namespace kvt::device {

static const char* kNoCuda =
    "kvtransfer was built without CUDA: build the CUDA variant (cd native/kvtransfer && pnpm -s build:cuda, "
    "needs nvcc) to move a GPU pool";

[[noreturn]] static void noCuda() { throw KvtError(ErrorCode::Device, kNoCuda); }

bool built() { return false; }
std::string unavailableReason() { return kNoCuda; }

int deviceCount() { return 0; }
void setDevice(int) { noCuda(); }
Uuid deviceUuid(int) { noCuda(); }
int ordinalOfUuid(const uint8_t*) { return -1; }
std::string uuidText(const uint8_t*) { return "?"; }
bool canReach(int, int, std::string* why) {
  *why = kNoCuda;
  return false;
}
void enablePeerAccess(int, int) { noCuda(); }
void checkDevicePool(const Region&) { noCuda(); }

Stream::Stream(int ordinal) : ordinal_(ordinal) { noCuda(); }
Stream::~Stream() = default;
void Stream::copy(const Copy*, size_t, CopyMode) { noCuda(); }
void Stream::waitEvent(void*) { noCuda(); }
void Stream::synchronize() { noCuda(); }

Event::Event(int ordinal) : ordinal_(ordinal) { noCuda(); }
Event::~Event() = default;
void Event::record(Stream&) { noCuda(); }
void Event::synchronize() const { noCuda(); }
bool Event::ready() const { noCuda(); }

PinnedBuffer::PinnedBuffer(int, size_t) { noCuda(); }
PinnedBuffer::~PinnedBuffer() = default;
DeviceBuffer::DeviceBuffer(int, size_t) { noCuda(); }
DeviceBuffer::~DeviceBuffer() = default;

IpcExport exportPool(const Region&) {
  IpcExport out;
  out.reason = kNoCuda;
  return out;
}
IpcMapping::IpcMapping(int ordinal, const uint8_t*) : ordinal_(ordinal) { noCuda(); }
IpcMapping::~IpcMapping() = default;

}  // namespace kvt::device
