// RDMA (ibverbs) for pools on hosts with NICs: the pool registered with the NIC (a GPU pool
// through GPUDirect RDMA, which needs the nvidia-peermem module), one reliable-connected queue
// pair per sender/receiver pair, set up over the control connection (wire::RdmaEndpoint both
// ways), and one-sided RDMA WRITEs of page runs (planRdmaWrites); completion goes to the
// receiver as Written / Commit on the control connection. rdma.cc needs libibverbs (CMake
// KVT_WITH_RDMA, on when <infiniband/verbs.h> exists); rdma_none.cc says it was not built.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "socket_io.h"
#include "spec.h"
#include "transport.h"
#include "wire.h"

namespace kvt::rdma {

bool built();

struct Probe {
  bool ok = false;
  std::string device;  // the first device with an active port
  std::string reason;  // why not ("no RDMA device", "built without ibverbs", ...)
};
Probe probe();

// "" when the region can be registered; else why not (a GPU pool without nvidia-peermem).
std::string registrationProblem(const Region& region);

// A protection domain with the region registered, a completion queue and one RC queue pair.
class Endpoint {
 public:
  Endpoint(const std::string& deviceName, const Region& region);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;
  // This side's queue pair, port, GID and (for the receiver) the pool's key and address.
  wire::RdmaEndpoint local() const;
  // INIT -> RTR -> RTS towards the peer's queue pair.
  void connect(const wire::RdmaEndpoint& remote);
  // Posts RDMA WRITEs of the ranges (local srcOffset -> remote dstOffset), keeping at most the
  // queue's depth outstanding; wait() returns once every write posted so far has completed.
  void write(const std::vector<Range>& ranges);
  void wait(Deadline deadline);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvt::rdma
