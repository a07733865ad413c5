#include "socket_io.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace kvt {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::Connect: return "kv_connect_failed";
    case ErrorCode::HandshakeMismatch: return "kv_handshake_mismatch";
    case ErrorCode::Protocol: return "kv_protocol";
    case ErrorCode::Timeout: return "kv_timeout";
    case ErrorCode::PeerClosed: return "kv_peer_closed";
    case ErrorCode::OutOfBounds: return "kv_out_of_bounds";
    case ErrorCode::Aborted: return "kv_aborted";
    case ErrorCode::Closed: return "kv_closed";
    case ErrorCode::CommitMismatch: return "kv_commit_mismatch";
    case ErrorCode::Io: return "kv_io";
    case ErrorCode::Device: return "kv_device";
    case ErrorCode::TransportUnavailable: return "kv_transport_unavailable";
  }
  return "kv_io";
}

int Deadline::pollMs() const {
  if (infinite) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(at - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1 << 30));
}

static std::string errnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

static void throwIoErrno(const char* what) {
  if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN || errno == ESHUTDOWN)
    throw KvtError(ErrorCode::PeerClosed, errnoText(what));
  throw KvtError(ErrorCode::Io, errnoText(what));
}

void tuneSocket(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int bufBytes = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufBytes, sizeof bufBytes);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufBytes, sizeof bufBytes);
  // Blocking calls return at least every slice so the caller can check its deadline.
  struct timeval slice = {0, kIoSliceMs * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof slice);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &slice, sizeof slice);
}

int connectTo(const std::string& host, uint16_t port, Deadline deadline) {
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* res = nullptr;
  std::string portText = std::to_string(port);
  int gai = ::getaddrinfo(host.c_str(), portText.c_str(), &hints, &res);
  if (gai != 0) throw KvtError(ErrorCode::Connect, "resolve " + host + ": " + ::gai_strerror(gai));
  std::string lastError = "no address";
  for (struct addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    tuneSocket(fd);
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      struct pollfd p = {fd, POLLOUT, 0};
      int prc;
      do prc = ::poll(&p, 1, deadline.pollMs()); while (prc < 0 && errno == EINTR);
      if (prc == 0) {
        ::close(fd);
        ::freeaddrinfo(res);
        throw KvtError(ErrorCode::Timeout, "connect to " + host + ":" + portText + " passed its deadline");
      }
      int soError = 0;
      socklen_t len = sizeof soError;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len);
      rc = soError == 0 ? 0 : -1;
      errno = soError;
    }
    if (rc == 0) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      ::freeaddrinfo(res);
      return fd;
    }
    lastError = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  throw KvtError(ErrorCode::Connect, "connect to " + host + ":" + portText + ": " + lastError);
}

int listenOn(const std::string& host, uint16_t port, uint16_t* boundPort) {
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  struct addrinfo* res = nullptr;
  std::string portText = std::to_string(port);
  int gai = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), portText.c_str(), &hints, &res);
  if (gai != 0) throw KvtError(ErrorCode::Io, "resolve " + host + ": " + ::gai_strerror(gai));
  int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  if (fd < 0) {
    ::freeaddrinfo(res);
    throw KvtError(ErrorCode::Io, errnoText("socket"));
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  tuneSocket(fd);  // accepted sockets inherit the buffer sizes
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
    std::string text = errnoText("bind/listen");
    ::close(fd);
    ::freeaddrinfo(res);
    throw KvtError(ErrorCode::Io, text + " (" + host + ":" + portText + ")");
  }
  ::freeaddrinfo(res);
  struct sockaddr_storage addr = {};
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<struct sockaddr*>(&addr), &len);
  *boundPort = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                          : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  return fd;
}

void sendAll(int fd, const void* data, size_t length, Deadline deadline) {
  struct iovec iov = {const_cast<void*>(data), length};
  writevAll(fd, &iov, 1, deadline);
}

void writevAll(int fd, struct iovec* iov, int iovCount, Deadline deadline) {
  while (iovCount > 0) {
    // Blocking send: one syscall moves as much as the socket buffer takes; SO_SNDTIMEO bounds it.
    struct msghdr msg = {};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(std::min(iovCount, IOV_MAX));
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (deadline.expired()) throw KvtError(ErrorCode::Timeout, "send passed its deadline");
        continue;
      }
      throwIoErrno("sendmsg");
    }
    // Advance past what was written.
    size_t left = static_cast<size_t>(n);
    while (iovCount > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --iovCount;
    }
    if (iovCount > 0 && left > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
    if (iovCount > 0 && deadline.expired()) throw KvtError(ErrorCode::Timeout, "send passed its deadline");
  }
}

bool recvAll(int fd, void* data, size_t length, Deadline deadline) {
  char* out = static_cast<char*>(data);
  size_t got = 0;
  while (got < length) {
    // MSG_WAITALL: one syscall per message in the common case; SO_RCVTIMEO bounds each call.
    ssize_t n = ::recv(fd, out + got, length - got, MSG_WAITALL);
    if (n > 0) {
      got += static_cast<size_t>(n);
      if (got < length && deadline.expired()) throw KvtError(ErrorCode::Timeout, "receive passed its deadline");
      continue;
    }
    if (n == 0) {
      if (got == 0) return false;
      throw KvtError(ErrorCode::PeerClosed, "peer closed the connection mid-message");
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (deadline.expired()) throw KvtError(ErrorCode::Timeout, "receive passed its deadline");
      continue;
    }
    throwIoErrno("recv");
  }
  return true;
}

bool sendNow(int fd, const void* data, size_t length) {
  ssize_t n;
  do n = ::send(fd, data, length, MSG_DONTWAIT | MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(length);
}

bool peerHungUp(int fd) {
  struct pollfd p = {fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

bool readable(int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  return ::poll(&p, 1, ms) > 0;
}

}  // namespace kvt
