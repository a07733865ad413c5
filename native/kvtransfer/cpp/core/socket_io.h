// Blocking socket helpers where every wait has a deadline: sockets carry SO_RCVTIMEO/SO_SNDTIMEO
// slices (kIoSliceMs) and each helper checks its deadline between slices. All throw KvtError.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "errors.h"

namespace kvt {

using Clock = std::chrono::steady_clock;

// An absolute point in time; `never()` waits forever (only used for idle server reads).
struct Deadline {
  Clock::time_point at;
  bool infinite = false;
  static Deadline in(int64_t ms) { return {Clock::now() + std::chrono::milliseconds(ms), false}; }
  static Deadline never() { return {Clock::time_point::max(), true}; }
  // Milliseconds left for poll(): -1 for infinite, 0 when passed.
  int pollMs() const;
  bool expired() const { return !infinite && Clock::now() >= at; }
};

// Blocking socket calls return at least this often, so deadlines are checked (and met) within it.
constexpr int kIoSliceMs = 50;

// Sets TCP_NODELAY and large socket buffers (bulk transfer on loopback and LANs).
void tuneSocket(int fd);
int connectTo(const std::string& host, uint16_t port, Deadline deadline);
// Binds and listens; port 0 picks a free one. Returns the fd; *boundPort gets the port.
int listenOn(const std::string& host, uint16_t port, uint16_t* boundPort);

void sendAll(int fd, const void* data, size_t length, Deadline deadline);
// Writes every byte of the iovec array (modified in place as it progresses).
void writevAll(int fd, struct iovec* iov, int iovCount, Deadline deadline);
// Reads exactly `length` bytes. Returns false on a clean EOF before the first byte.
bool recvAll(int fd, void* data, size_t length, Deadline deadline);
// One small message without waiting (MSG_DONTWAIT): false unless every byte went out at once.
bool sendNow(int fd, const void* data, size_t length);
// Whether the peer has shut the connection down (its process died or closed it); never waits.
bool peerHungUp(int fd);
// Waits up to `ms` for bytes to read; true when some arrived (or the connection ended).
bool readable(int fd, int ms);

}  // namespace kvt
