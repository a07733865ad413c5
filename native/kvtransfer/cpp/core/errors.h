// Failures of the transfer engine. One code per failure; the binding turns each into the
// TypeScript error class of the same name (src/errors.ts).
#pragma once

#include <stdexcept>
#include <string>

namespace kvt {

enum class ErrorCode : int {
  Connect = 1,           // could not reach the peer
  HandshakeMismatch = 2, // the two sides disagree on the KV layout
  Protocol = 3,          // the peer sent something malformed
  Timeout = 4,           // a deadline passed
  PeerClosed = 5,        // the peer went away mid-transfer
  OutOfBounds = 6,       // a range falls outside a registered region
  Aborted = 7,           // the sender aborted the transfer
  Closed = 8,            // this endpoint was closed
  CommitMismatch = 9,    // the receiver counted other bytes than the sender declared
  Io = 10,               // any other socket error
  Device = 11,           // a CUDA, NCCL or verbs call failed (the message names the call)
  TransportUnavailable = 12,  // the transport asked for cannot run between these two endpoints
};

const char* errorCodeName(ErrorCode code);

class KvtError : public std::runtime_error {
 public:
  KvtError(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace kvt
