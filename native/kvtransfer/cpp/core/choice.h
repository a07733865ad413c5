// Which transport a sender/receiver pair uses: the receiver advertises what it offers in its
// handshake reply (wire::Capabilities), the sender adds what it can do itself, and the rule picks:
//   same host, both pools on GPUs          cuda_ipc
//   both pools on GPUs (elsewhere, or IPC   rdma if both have an RDMA device, else nccl if both
//     not possible)                         load NCCL, else tcp (staged through pinned host memory)
//   a host pool on either side             tcp
// A forced transport that is not possible is an error naming why. Pure: no device is touched.
#pragma once

#include <string>
#include <vector>

#include "transport.h"

namespace kvt {

// One side as the rule sees it. `ok` flags mean "this side can do it"; reasons say why not.
struct EndpointView {
  std::string hostId;
  uint32_t pid = 0;
  bool devicePool = false;
  bool ipc = false;  // receiver: pool exported; sender: receiver's GPU visible and reachable from ours
  std::string ipcReason;
  bool nccl = false;
  std::string ncclReason;
  bool rdma = false;
  std::string rdmaReason;
};

struct Candidate {
  TransportKind kind;
  std::string reason;  // why it qualifies ("same host, both pools on GPUs") or why not
};

struct Choice {
  std::vector<Candidate> usable;    // in preference order; never empty (tcp is always usable)
  std::vector<Candidate> rejected;  // the better ones that were not possible, with why
};

// Throws KvtError(TransportUnavailable) when `preference` forces a transport that is not possible.
Choice chooseTransport(const EndpointView& sender, const EndpointView& receiver, TransportPreference preference);

// "<boot id>/<hostname>": equal for two processes of one OS instance (what CUDA IPC needs).
std::string hostIdentity();

}  // namespace kvt
