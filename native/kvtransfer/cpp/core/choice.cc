#include "choice.h"

#include <unistd.h>

#include <fstream>
#include <stdexcept>

namespace kvt {

const char* transportName(TransportKind kind) {
  switch (kind) {
    case TransportKind::Tcp: return "tcp";
    case TransportKind::CudaIpc: return "cuda_ipc";
    case TransportKind::Nccl: return "nccl";
    case TransportKind::Rdma: return "rdma";
  }
  return "tcp";
}

TransportPreference parseTransportPreference(const std::string& name) {
  if (name == "auto") return TransportPreference::Auto;
  if (name == "tcp") return TransportPreference::Tcp;
  if (name == "cuda_ipc") return TransportPreference::CudaIpc;
  if (name == "nccl") return TransportPreference::Nccl;
  if (name == "rdma") return TransportPreference::Rdma;
  throw std::invalid_argument("transport must be 'auto', 'tcp', 'cuda_ipc', 'nccl' or 'rdma', not '" + name + "'");
}

static std::string poolText(const EndpointView& side) { return side.devicePool ? "GPU" : "host memory"; }

static std::string sideReason(const char* side, bool ok, const std::string& reason) {
  if (ok) return "";
  return std::string(side) + ": " + (reason.empty() ? "not available" : reason);
}

static std::string joinReasons(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "; " + b;
}

Choice chooseTransport(const EndpointView& sender, const EndpointView& receiver, TransportPreference preference) {
  Choice choice;
  const bool bothGpu = sender.devicePool && receiver.devicePool;
  const std::string pools = "pools in " + poolText(sender) + " (sender) and " + poolText(receiver) + " (receiver)";
  auto consider = [&](TransportKind kind, bool possible, const std::string& why) {
    (possible ? choice.usable : choice.rejected).push_back({kind, why});
  };

  // cuda_ipc: both pools on GPUs of one OS instance, the receiver's pool exported, its GPU reachable.
  {
    const bool sameHost = !sender.hostId.empty() && sender.hostId == receiver.hostId;
    std::string why;
    if (!bothGpu) why = "needs both pools on GPUs; " + pools;
    else if (!sameHost) why = "different hosts (" + sender.hostId + " vs " + receiver.hostId + ")";
    else why = joinReasons(sideReason("receiver", receiver.ipc, receiver.ipcReason),
                           sideReason("sender", sender.ipc, sender.ipcReason));
    const bool possible = why.empty();
    consider(TransportKind::CudaIpc, possible,
             possible ? (sender.pid == receiver.pid ? "same process, both pools on GPUs"
                                                    : "same host, both pools on GPUs")
                      : why);
  }
  // rdma, then nccl: GPU pools that IPC cannot join.
  {
    std::string why = bothGpu ? joinReasons(sideReason("receiver", receiver.rdma, receiver.rdmaReason),
                                            sideReason("sender", sender.rdma, sender.rdmaReason))
                              : "needs both pools on GPUs; " + pools;
    consider(TransportKind::Rdma, why.empty(), why.empty() ? "both pools on GPUs, both sides have an RDMA device" : why);
  }
  {
    std::string why = bothGpu ? joinReasons(sideReason("receiver", receiver.nccl, receiver.ncclReason),
                                            sideReason("sender", sender.nccl, sender.ncclReason))
                              : "needs both pools on GPUs; " + pools;
    if (why.empty() && sender.hostId == receiver.hostId && sender.pid == receiver.pid)
      why = "both ends in one process (NCCL needs a rank per process)";
    consider(TransportKind::Nccl, why.empty(), why.empty() ? "both pools on GPUs, both sides load NCCL" : why);
  }
  consider(TransportKind::Tcp, true,
           sender.devicePool || receiver.devicePool ? "TCP with pinned host staging of the GPU pool"
                                                    : "both pools in host memory");

  if (preference == TransportPreference::Auto) return choice;
  const TransportKind forced = preference == TransportPreference::Tcp       ? TransportKind::Tcp
                               : preference == TransportPreference::CudaIpc ? TransportKind::CudaIpc
                               : preference == TransportPreference::Nccl    ? TransportKind::Nccl
                                                                            : TransportKind::Rdma;
  for (const Candidate& c : choice.usable) {
    if (c.kind != forced) continue;
    return Choice{{c}, {}};
  }
  for (const Candidate& c : choice.rejected) {
    if (c.kind != forced) continue;
    throw KvtError(ErrorCode::TransportUnavailable,
                   std::string("transport '") + transportName(forced) + "' is not possible: " + c.reason);
  }
  throw KvtError(ErrorCode::TransportUnavailable, "unknown transport");
}

std::string hostIdentity() {
  std::string bootId;
  std::ifstream file("/proc/sys/kernel/random/boot_id");
  std::getline(file, bootId);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return bootId + "/" + host;
}

}  // namespace kvt
