// RDMA over ibverbs (built when <infiniband/verbs.h> exists). See rdma.h.
#include "rdma.h"

#include <infiniband/verbs.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "plan.h"

namespace kvt::rdma {
namespace {

constexpr uint32_t kQueueDepth = 1024;   // send work requests outstanding at most
constexpr uint32_t kSignalEvery = 64;    // one completion per this many writes
constexpr uint64_t kMaxWriteBytes = 64ull << 20;
constexpr uint8_t kPort = 1;

[[noreturn]] void fail(const std::string& what) {
  throw KvtError(ErrorCode::Device, what + ": " + std::strerror(errno));
}

int gidIndex() {
  const char* value = std::getenv("TANDEM_KVT_RDMA_GID_INDEX");
  return value != nullptr && *value != '\0' ? std::atoi(value) : 0;
}

bool peermemLoaded() {
  struct stat info;
  return ::stat("/sys/module/nvidia_peermem", &info) == 0 || ::stat("/sys/module/nv_peer_mem", &info) == 0;
}

}  // namespace

bool built() { return true; }

Probe probe() {
  int count = 0;
  ibv_device** devices = ::ibv_get_device_list(&count);
  // No RDMA stack in the kernel shows as a failed list (ENOSYS), none installed as an empty one.
  if (devices == nullptr) return {false, "", std::string("no RDMA device (ibv_get_device_list: ") + std::strerror(errno) + ")"};
  Probe result;
  result.reason = "no RDMA device (ibv_get_device_list found none)";
  for (int i = 0; i < count && !result.ok; ++i) {
    ibv_context* context = ::ibv_open_device(devices[i]);
    if (context == nullptr) continue;
    ibv_port_attr port = {};
    if (::ibv_query_port(context, kPort, &port) == 0 && port.state == IBV_PORT_ACTIVE) {
      result.ok = true;
      result.device = ::ibv_get_device_name(devices[i]);
      result.reason.clear();
    } else {
      result.reason = std::string("RDMA device ") + ::ibv_get_device_name(devices[i]) + " has no active port";
    }
    ::ibv_close_device(context);
  }
  ::ibv_free_device_list(devices);
  return result;
}

std::string registrationProblem(const Region& region) {
  if (region.onDevice() && !peermemLoaded())
    return "GPUDirect RDMA needs the nvidia-peermem kernel module (modprobe nvidia-peermem); it is not loaded";
  return "";
}

struct Endpoint::Impl {
  Region region;
  ibv_context* context = nullptr;
  ibv_pd* pd = nullptr;
  ibv_mr* mr = nullptr;
  ibv_cq* cq = nullptr;
  ibv_qp* qp = nullptr;
  ibv_port_attr port = {};
  ibv_gid gid = {};
  uint32_t psn = 0;
  wire::RdmaEndpoint remote = {};
  // Completions of an RC queue pair arrive in posting order: each signaled request retires
  // itself and the unsignaled ones posted before it.
  std::deque<uint32_t> retiredBySignal;
  uint32_t sinceSignal = 0;
  uint32_t outstanding = 0;  // work requests not yet known complete
  std::mutex mutex;          // write() posts on one thread while wait() reaps on another

  ~Impl() {
    if (qp != nullptr) ::ibv_destroy_qp(qp);
    if (cq != nullptr) ::ibv_destroy_cq(cq);
    if (mr != nullptr) ::ibv_dereg_mr(mr);
    if (pd != nullptr) ::ibv_dealloc_pd(pd);
    if (context != nullptr) ::ibv_close_device(context);
  }

  // Reaps completions; with `block`, until at least one arrived or the deadline passed.
  void poll(bool block, Deadline deadline) {
    ibv_wc completions[32];
    for (;;) {
      int n = ::ibv_poll_cq(cq, 32, completions);
      if (n < 0) fail("ibv_poll_cq");
      for (int i = 0; i < n; ++i) {
        if (completions[i].status != IBV_WC_SUCCESS)
          throw KvtError(ErrorCode::Device,
                         std::string("RDMA WRITE failed: ") + ::ibv_wc_status_str(completions[i].status));
        if (!retiredBySignal.empty()) {
          outstanding -= retiredBySignal.front();
          retiredBySignal.pop_front();
        }
      }
      if (n > 0 || !block) return;
      if (deadline.expired()) throw KvtError(ErrorCode::Timeout, "RDMA writes passed their deadline");
      std::this_thread::yield();
    }
  }
};

Endpoint::Endpoint(const std::string& deviceName, const Region& region) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.region = region;
  if (std::string problem = registrationProblem(region); !problem.empty())
    throw KvtError(ErrorCode::TransportUnavailable, problem);
  int count = 0;
  ibv_device** devices = ::ibv_get_device_list(&count);
  if (devices == nullptr) fail("ibv_get_device_list");
  for (int i = 0; i < count && s.context == nullptr; ++i)
    if (deviceName == ::ibv_get_device_name(devices[i])) s.context = ::ibv_open_device(devices[i]);
  ::ibv_free_device_list(devices);
  if (s.context == nullptr) throw KvtError(ErrorCode::TransportUnavailable, "RDMA device " + deviceName + " not found");
  if (::ibv_query_port(s.context, kPort, &s.port) != 0) fail("ibv_query_port");
  if (::ibv_query_gid(s.context, kPort, gidIndex(), &s.gid) != 0) fail("ibv_query_gid");
  s.pd = ::ibv_alloc_pd(s.context);
  if (s.pd == nullptr) fail("ibv_alloc_pd");
  s.mr = ::ibv_reg_mr(s.pd, region.base, region.length,
                      IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
  if (s.mr == nullptr)
    fail(std::string("ibv_reg_mr of the ") + (region.onDevice() ? "GPU" : "host") + " pool (" +
         std::to_string(region.length) + " bytes)");
  s.cq = ::ibv_create_cq(s.context, int(kQueueDepth), nullptr, nullptr, 0);
  if (s.cq == nullptr) fail("ibv_create_cq");
  ibv_qp_init_attr init = {};
  init.send_cq = s.cq;
  init.recv_cq = s.cq;
  init.qp_type = IBV_QPT_RC;
  init.sq_sig_all = 0;
  init.cap.max_send_wr = kQueueDepth;
  init.cap.max_recv_wr = 1;
  init.cap.max_send_sge = 1;
  init.cap.max_recv_sge = 1;
  s.qp = ::ibv_create_qp(s.pd, &init);
  if (s.qp == nullptr) fail("ibv_create_qp");
  s.psn = std::random_device()() & 0xFFFFFF;
}

Endpoint::~Endpoint() = default;

wire::RdmaEndpoint Endpoint::local() const {
  const Impl& s = *impl_;
  wire::RdmaEndpoint out = {};
  out.qpn = s.qp->qp_num;
  out.psn = s.psn;
  out.lid = s.port.lid;
  out.portNum = kPort;
  out.mtu = uint8_t(s.port.active_mtu);
  out.rkey = s.mr->rkey;
  std::memcpy(out.gid, s.gid.raw, 16);
  out.remoteBase = reinterpret_cast<uint64_t>(s.region.base);
  return out;
}

void Endpoint::connect(const wire::RdmaEndpoint& remote) {
  Impl& s = *impl_;
  s.remote = remote;
  ibv_qp_attr attr = {};
  attr.qp_state = IBV_QPS_INIT;
  attr.pkey_index = 0;
  attr.port_num = kPort;
  attr.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
  if (::ibv_modify_qp(s.qp, &attr, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS) != 0)
    fail("ibv_modify_qp INIT");

  attr = {};
  attr.qp_state = IBV_QPS_RTR;
  attr.path_mtu = ibv_mtu(std::min<int>(remote.mtu, s.port.active_mtu));
  attr.dest_qp_num = remote.qpn;
  attr.rq_psn = remote.psn;
  attr.max_dest_rd_atomic = 1;
  attr.min_rnr_timer = 12;
  attr.ah_attr.dlid = remote.lid;
  attr.ah_attr.port_num = kPort;
  static const uint8_t zeroGid[16] = {};
  if (std::memcmp(remote.gid, zeroGid, 16) != 0) {  // RoCE / routed InfiniBand: address by GID
    attr.ah_attr.is_global = 1;
    std::memcpy(attr.ah_attr.grh.dgid.raw, remote.gid, 16);
    attr.ah_attr.grh.sgid_index = uint8_t(gidIndex());
    attr.ah_attr.grh.hop_limit = 64;
  }
  if (::ibv_modify_qp(s.qp, &attr,
                      IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                          IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER) != 0)
    fail("ibv_modify_qp RTR");

  attr = {};
  attr.qp_state = IBV_QPS_RTS;
  attr.timeout = 14;
  attr.retry_cnt = 7;
  attr.rnr_retry = 7;
  attr.sq_psn = s.psn;
  attr.max_rd_atomic = 1;
  if (::ibv_modify_qp(s.qp, &attr,
                      IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
                          IBV_QP_MAX_QP_RD_ATOMIC) != 0)
    fail("ibv_modify_qp RTS");
}

void Endpoint::write(const std::vector<Range>& ranges) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  const std::vector<RdmaWrite> writes = planRdmaWrites(ranges, kMaxWriteBytes, kSignalEvery);
  constexpr size_t kPerPost = 64;
  ibv_sge sges[kPerPost];
  ibv_send_wr requests[kPerPost];
  for (size_t begin = 0; begin < writes.size(); begin += kPerPost) {
    const size_t n = std::min(kPerPost, writes.size() - begin);
    while (s.outstanding + n > kQueueDepth - kSignalEvery) s.poll(true, Deadline::in(30'000));
    for (size_t i = 0; i < n; ++i) {
      const RdmaWrite& w = writes[begin + i];
      sges[i] = {reinterpret_cast<uint64_t>(s.region.base) + w.localOffset, w.length, s.mr->lkey};
      requests[i] = {};
      requests[i].wr_id = begin + i;
      requests[i].sg_list = &sges[i];
      requests[i].num_sge = 1;
      requests[i].opcode = IBV_WR_RDMA_WRITE;
      requests[i].send_flags = w.signaled ? IBV_SEND_SIGNALED : 0;
      requests[i].wr.rdma.remote_addr = s.remote.remoteBase + w.remoteOffset;
      requests[i].wr.rdma.rkey = s.remote.rkey;
      requests[i].next = i + 1 < n ? &requests[i + 1] : nullptr;
      s.sinceSignal++;
      if (w.signaled) {
        s.retiredBySignal.push_back(s.sinceSignal);
        s.sinceSignal = 0;
      }
    }
    ibv_send_wr* bad = nullptr;
    if (::ibv_post_send(s.qp, requests, &bad) != 0) fail("ibv_post_send");
    s.outstanding += uint32_t(n);
  }
}

void Endpoint::wait(Deadline deadline) {
  Impl& s = *impl_;
  for (;;) {
    {
      std::lock_guard lock(s.mutex);
      if (s.retiredBySignal.empty()) return;
      s.poll(false, deadline);
      if (s.retiredBySignal.empty()) return;
    }
    if (deadline.expired()) throw KvtError(ErrorCode::Timeout, "RDMA writes passed their deadline");
    std::this_thread::yield();
  }
}

}  // namespace kvt::rdma
