// connect(): the handshake on a first connection (layout check, the receiver's capabilities),
// the transport choice (choice.h), and the chosen transport's setup: TCP opens its other
// streams; cuda_ipc maps the receiver's pool; nccl joins a communicator whose id it sends;
// rdma exchanges queue-pair endpoints. With `auto`, a transport whose setup fails gives way to
// the next one, and the reported reason says so.
#include <unistd.h>

#include <cstring>
#include <random>

#include "choice.h"
#include "device.h"
#include "nccl_api.h"
#include "nccl_link.h"
#include "rdma.h"
#include "senders.h"
#include "wire.h"

namespace kvt {

uint64_t checkRanges(const std::vector<Range>& ranges, uint64_t localBytes, uint64_t remoteBytes) {
  uint64_t total = 0;
  for (const Range& r : ranges) {
    if (r.length > localBytes || r.srcOffset > localBytes - r.length)
      throw KvtError(ErrorCode::OutOfBounds, "source range [" + std::to_string(r.srcOffset) + ", +" +
                                                 std::to_string(r.length) + ") outside the local region of " +
                                                 std::to_string(localBytes) + " bytes");
    if (r.length > remoteBytes || r.dstOffset > remoteBytes - r.length)
      throw KvtError(ErrorCode::OutOfBounds, "destination range [" + std::to_string(r.dstOffset) + ", +" +
                                                 std::to_string(r.length) + ") outside the receiver's region of " +
                                                 std::to_string(remoteBytes) + " bytes");
    total += r.length;
  }
  return total;
}

namespace {

void copyText(char* out, size_t size, const std::string& text) {
  std::memset(out, 0, size);
  std::memcpy(out, text.data(), std::min(text.size(), size - 1));
}

std::string readText(const char* text, size_t size) { return std::string(text, strnlen(text, size)); }

// Connects one stream and runs the layout handshake on it.
int openStream(const ConnectOptions& o, uint32_t streamIndex, uint64_t sessionId, Deadline deadline,
               wire::HelloReply* reply) {
  int fd = connectTo(o.host, o.port, deadline);
  try {
    wire::Hello hello = {};
    hello.magic = wire::kMagic;
    hello.version = wire::kVersion;
    hello.numLayers = o.spec.numLayers;
    hello.numKvHeads = o.spec.numKvHeads;
    hello.headDim = o.spec.headDim;
    hello.pageSize = o.spec.pageSize;
    hello.numPages = o.spec.numPages;
    hello.streamIndex = streamIndex;
    hello.sessionId = sessionId;
    hello.deviceKind = o.region.onDevice() ? wire::kDeviceCuda : wire::kDeviceHost;
    copyText(hello.dtype, sizeof hello.dtype, o.spec.dtype);
    copyText(hello.model, sizeof hello.model, o.spec.model);
    sendAll(fd, &hello, sizeof hello, deadline);
    if (!recvAll(fd, reply, sizeof *reply, deadline))
      throw KvtError(ErrorCode::PeerClosed, "receiver closed the connection during the handshake");
    if (reply->magic != wire::kMagic) throw KvtError(ErrorCode::Protocol, "the peer is not a kvtransfer receiver");
    if (reply->status != wire::HelloStatus::Ok)
      throw KvtError(ErrorCode::HandshakeMismatch, "KV layout mismatch with " + o.host + ":" + std::to_string(o.port) +
                                                       ": " + readText(reply->reason, sizeof reply->reason));
    return fd;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

EndpointView receiverView(const wire::Capabilities& caps) {
  EndpointView view;
  view.hostId = readText(caps.hostId, sizeof caps.hostId);
  view.pid = caps.pid;
  view.devicePool = caps.deviceKind == wire::kDeviceCuda;
  view.ipc = (caps.flags & wire::kCapCudaIpc) != 0;
  view.ipcReason = readText(caps.ipcReason, sizeof caps.ipcReason);
  view.nccl = (caps.flags & wire::kCapNccl) != 0;
  view.ncclReason = readText(caps.ncclReason, sizeof caps.ncclReason);
  view.rdma = (caps.flags & wire::kCapRdma) != 0;
  view.rdmaReason = readText(caps.rdmaReason, sizeof caps.rdmaReason);
  return view;
}

// This side, as the rule sees it, given what the receiver offered.
EndpointView senderView(const Region& region, const wire::Capabilities& caps, rdma::Probe* rdmaProbe) {
  EndpointView view;
  view.hostId = hostIdentity();
  view.pid = uint32_t(::getpid());
  view.devicePool = region.onDevice();
  const char* hostPool = "the sender's pool is in host memory";
  if (!view.devicePool) {
    view.ipcReason = view.ncclReason = view.rdmaReason = hostPool;
    return view;
  }
  if (caps.deviceKind != wire::kDeviceCuda) {
    view.ipcReason = "the receiver's pool is in host memory";
  } else if (view.hostId == readText(caps.hostId, sizeof caps.hostId) && view.pid == caps.pid) {
    // One process: the receiver's pointer is valid here as it is (peer access if on another GPU).
    view.ipc = device::canReach(region.device, caps.deviceOrdinal, &view.ipcReason);
  } else {
    int ordinal = device::ordinalOfUuid(caps.deviceUuid);
    if (ordinal < 0)
      view.ipcReason = "the receiver's GPU " + device::uuidText(caps.deviceUuid) +
                       " is not visible in this process (CUDA_VISIBLE_DEVICES)";
    else
      view.ipc = device::canReach(region.device, ordinal, &view.ipcReason);
  }
  view.nccl = nccl::load(&view.ncclReason) != nullptr;
  if (view.nccl && caps.deviceKind == wire::kDeviceCuda && device::ordinalOfUuid(caps.deviceUuid) == region.device) {
    // NCCL refuses two ranks on one GPU ("invalid usage"): say so instead of trying.
    view.nccl = false;
    view.ncclReason = "both pools on one GPU (NCCL needs a GPU per rank)";
  }
  *rdmaProbe = rdma::probe();
  view.rdmaReason = rdmaProbe->ok ? rdma::registrationProblem(region) : rdmaProbe->reason;
  view.rdma = view.rdmaReason.empty();
  return view;
}

// Tells the receiver which transport this connection uses; returns its SelectAck payload.
std::vector<uint8_t> select(int fd, TransportKind kind, const void* payload, size_t bytes, Deadline deadline) {
  wire::FrameHeader frame = {wire::FrameType::Select, 0, 0, uint64_t(kind), bytes};
  sendAll(fd, &frame, sizeof frame, deadline);
  if (bytes > 0) sendAll(fd, payload, bytes, deadline);
  wire::FrameHeader ack;
  if (!recvAll(fd, &ack, sizeof ack, deadline))
    throw KvtError(ErrorCode::PeerClosed, "receiver closed the connection before answering Select");
  if (ack.type != wire::FrameType::SelectAck) throw KvtError(ErrorCode::Protocol, "expected a SelectAck");
  if (ack.length > 4096) throw KvtError(ErrorCode::Protocol, "SelectAck payload too large");
  std::vector<uint8_t> answer(ack.length);
  if (ack.length > 0 && !recvAll(fd, answer.data(), answer.size(), deadline))
    throw KvtError(ErrorCode::PeerClosed, "receiver closed the connection mid-SelectAck");
  if (ack.offset != 0)
    throw KvtError(ErrorCode::TransportUnavailable, std::string("receiver refused ") + transportName(kind) + ": " +
                                                        std::string(answer.begin(), answer.end()));
  return answer;
}

}  // namespace

Connected connect(const ConnectOptions& o, Deadline deadline) {
  if (o.numStreams == 0 || o.numStreams > 64) throw KvtError(ErrorCode::Connect, "numStreams must be in 1..64");
  if (o.region.onDevice()) device::checkDevicePool(o.region);
  const uint64_t sessionId = (uint64_t(std::random_device()()) << 32) | std::random_device()();
  wire::HelloReply reply;
  int fd = openStream(o, 0, sessionId, deadline, &reply);
  const wire::Capabilities caps = reply.caps;
  std::string notes;  // better transports that were not possible or failed to set up
  try {
    rdma::Probe rdmaProbe;
    const Choice choice = chooseTransport(senderView(o.region, caps, &rdmaProbe), receiverView(caps), o.transport);
    for (const Candidate& c : choice.rejected) {
      if (c.kind == TransportKind::Tcp) continue;
      notes += std::string(notes.empty() ? "" : "; ") + transportName(c.kind) + ": " + c.reason;
    }
    for (const Candidate& candidate : choice.usable) {
      const std::string chosen = std::string(transportName(candidate.kind)) + ": " + candidate.reason;
      auto connected = [&](std::unique_ptr<Sender> sender) {
        return Connected{std::move(sender), notes.empty() ? chosen : chosen + " (not chosen: " + notes + ")"};
      };
      bool selected = false;  // the receiver heard a Select on fd: a retry needs a fresh connection
      try {
        switch (candidate.kind) {
          case TransportKind::Tcp: {
            std::vector<int> fds = {fd};
            try {
              for (uint32_t i = 1; i < o.numStreams; ++i) {
                wire::HelloReply other;
                fds.push_back(openStream(o, i, sessionId, deadline, &other));
              }
            } catch (...) {
              for (size_t i = 1; i < fds.size(); ++i) ::close(fds[i]);
              throw;
            }
            return connected(makeTcpSender(std::move(fds), o.region, reply.numPages, reply.regionBytes));
          }
          case TransportKind::CudaIpc: {
            std::shared_ptr<device::IpcMapping> mapping;
            uint8_t* remoteBase = reinterpret_cast<uint8_t*>(caps.baseAddress);
            if (caps.pid != uint32_t(::getpid()) || readText(caps.hostId, sizeof caps.hostId) != hostIdentity()) {
              mapping = std::make_shared<device::IpcMapping>(o.region.device, caps.ipcHandle);
              remoteBase = mapping->base() + caps.ipcOffset;
            } else {
              device::enablePeerAccess(o.region.device, caps.deviceOrdinal);
            }
            auto mover = makeIpcMover(o.region, remoteBase, mapping);
            selected = true;
            select(fd, TransportKind::CudaIpc, nullptr, 0, deadline);
            return connected(makeControlSender(fd, o.region, reply.numPages, reply.regionBytes, std::move(mover)));
          }
          case TransportKind::Nccl: {
            nccl::UniqueId id = NcclLink::newId();
            selected = true;
            select(fd, TransportKind::Nccl, &id, sizeof id, deadline);
            auto link = std::make_unique<NcclLink>(o.region.device, id, 0);  // the receiver joins too
            return connected(makeControlSender(fd, o.region, reply.numPages, reply.regionBytes,
                                               makeNcclMover(o.region, std::move(link))));
          }
          case TransportKind::Rdma: {
            auto endpoint = std::make_unique<rdma::Endpoint>(rdmaProbe.device, o.region);
            wire::RdmaEndpoint local = endpoint->local();
            selected = true;
            std::vector<uint8_t> answer = select(fd, TransportKind::Rdma, &local, sizeof local, deadline);
            wire::RdmaEndpoint remote;
            if (answer.size() != sizeof remote) throw KvtError(ErrorCode::Protocol, "RDMA SelectAck of the wrong size");
            std::memcpy(&remote, answer.data(), sizeof remote);
            endpoint->connect(remote);
            return connected(makeControlSender(fd, o.region, reply.numPages, reply.regionBytes,
                                               makeRdmaMover(o.region, std::move(endpoint))));
          }
        }
      } catch (const KvtError& error) {
        if (o.transport != TransportPreference::Auto) throw;
        notes += std::string(notes.empty() ? "" : "; ") + transportName(candidate.kind) + " failed: " + error.what();
        if (selected) {
          ::close(fd);
          fd = -1;
          fd = openStream(o, 0, sessionId, deadline, &reply);
        }
      }
    }
    throw KvtError(ErrorCode::TransportUnavailable, "no transport could be set up: " + notes);
  } catch (...) {
    if (fd >= 0) ::close(fd);
    throw;
  }
}

}  // namespace kvt
