// RDMA in a build without libibverbs: the transport is reported unavailable.
#include "rdma.h"

namespace kvt::rdma {

static const char* kNotBuilt = "built without ibverbs (install libibverbs-dev and rebuild)";

bool built() { return false; }

Probe probe() { return {false, "", kNotBuilt}; }

std::string registrationProblem(const Region&) { return kNotBuilt; }

struct Endpoint::Impl {};
Endpoint::Endpoint(const std::string&, const Region&) { throw KvtError(ErrorCode::TransportUnavailable, kNotBuilt); }
Endpoint::~Endpoint() = default;
wire::RdmaEndpoint Endpoint::local() const { return {}; }
void Endpoint::connect(const wire::RdmaEndpoint&) {}
void Endpoint::write(const std::vector<Range>&) {}
void Endpoint::wait(Deadline) {}

}  // namespace kvt::rdma
