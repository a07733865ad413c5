#include "nccl_api.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <type_traits>

namespace kvt::nccl {

const Api* load(std::string* why) {
  static std::once_flag once;
  static Api api;
  static const Api* loaded = nullptr;
  static std::string failure;
  std::call_once(once, [] {
    const char* configured = std::getenv("TANDEM_NCCL_LIBRARY");
    const std::string path = configured != nullptr && *configured != '\0' ? configured : "libnccl.so.2";
    void* library = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      const char* error = ::dlerror();
      failure = "NCCL not loadable (" + std::string(error != nullptr ? error : path) +
                "); set TANDEM_NCCL_LIBRARY to libnccl.so.2's path";
      return;
    }
    bool complete = true;
    auto bind = [&](auto& slot, const char* name) {
      slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(::dlsym(library, name));
      if (slot == nullptr) {
        complete = false;
        failure += std::string(failure.empty() ? "" : ", ") + name;
      }
    };
    bind(api.getVersion, "ncclGetVersion");
    bind(api.getUniqueId, "ncclGetUniqueId");
    bind(api.commInitRank, "ncclCommInitRank");
    bind(api.send, "ncclSend");
    bind(api.recv, "ncclRecv");
    bind(api.groupStart, "ncclGroupStart");
    bind(api.groupEnd, "ncclGroupEnd");
    bind(api.commDestroy, "ncclCommDestroy");
    bind(api.commAbort, "ncclCommAbort");
    bind(api.commGetAsyncError, "ncclCommGetAsyncError");
    bind(api.getErrorString, "ncclGetErrorString");
    if (!complete) {
      failure = path + " lacks " + failure + " (NCCL >= 2.7 needed for send/recv)";
      ::dlclose(library);
      return;
    }
    api.getVersion(&api.version);
    api.path = path;
    loaded = &api;
  });
  if (loaded == nullptr && why != nullptr) *why = failure;
  return loaded;
}

}  // namespace kvt::nccl
