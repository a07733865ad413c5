// The subset of NCCL's C ABI this transport uses, declared here (nccl.h's names and values, stable
// across NCCL 2.x) and bound with dlopen at run time, so the build needs no NCCL headers and a
// machine without NCCL still loads the addon (the transport is then reported unavailable).
#pragma once

#include <cstddef>
#include <string>

namespace kvt::nccl {

struct UniqueId {
  char internal[128];  // NCCL_UNIQUE_ID_BYTES
};
static_assert(sizeof(UniqueId) == 128);

struct CommOpaque;
using Comm = CommOpaque*;

enum Result : int {
  kSuccess = 0,
  kUnhandledCudaError = 1,
  kSystemError = 2,
  kInternalError = 3,
  kInvalidArgument = 4,
  kInvalidUsage = 5,
  kRemoteError = 6,
  kInProgress = 7,
};

enum DataType : int { kUint8 = 1 };  // ncclUint8

struct Api {
  Result (*getVersion)(int* version);
  Result (*getUniqueId)(UniqueId* id);
  Result (*commInitRank)(Comm* comm, int numRanks, UniqueId id, int rank);
  Result (*send)(const void* buffer, size_t count, DataType type, int peer, Comm comm, void* stream);
  Result (*recv)(void* buffer, size_t count, DataType type, int peer, Comm comm, void* stream);
  Result (*groupStart)();
  Result (*groupEnd)();
  Result (*commDestroy)(Comm comm);
  Result (*commAbort)(Comm comm);
  Result (*commGetAsyncError)(Comm comm, Result* error);
  const char* (*getErrorString)(Result result);
  int version = 0;  // e.g. 22805 for 2.28.5
  std::string path;
};

// The library, loaded once: TANDEM_NCCL_LIBRARY names the file, else "libnccl.so.2" on the loader's
// path. Null when it cannot be loaded, with the reason in *why.
const Api* load(std::string* why);

}  // namespace kvt::nccl
