// The bench's reference point: plain blocking send/recv of one contiguous buffer over loopback,
// one connection, the same socket tuning as the engine (buffers, TCP_NODELAY, timeout slices). A receiver thread reads `bytes` and
// answers one byte; the sender times send-all -> answer. Prints one JSON line per size:
//   kvt_baseline <reps> <bytes>...   ->   {"bytes":N,"reps":R,"seconds":[...],"gbps":best}
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "socket_io.h"

using namespace kvt;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: kvt_baseline <reps> <bytes>...\n");
    return 2;
  }
  int reps = std::atoi(argv[1]);
  std::vector<uint64_t> sizes;
  for (int i = 2; i < argc; ++i) sizes.push_back(std::strtoull(argv[i], nullptr, 10));
  uint64_t maxBytes = 0;
  for (uint64_t s : sizes) maxBytes = std::max(maxBytes, s);

  uint16_t port = 0;
  int listenFd = listenOn("127.0.0.1", 0, &port);
  std::vector<uint8_t> src(maxBytes), dst(maxBytes);
  for (uint64_t i = 0; i < maxBytes; ++i) src[i] = uint8_t(i * 131 + 7);

  std::thread receiver([&] {
    int fd = ::accept(listenFd, nullptr, nullptr);
    tuneSocket(fd);
    for (uint64_t bytes : sizes) {
      for (int r = 0; r < reps; ++r) {
        uint64_t got = 0;
        while (got < bytes) {
          ssize_t n = ::recv(fd, dst.data() + got, bytes - got, 0);
          if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;  // tuneSocket's timeout slice
          if (n <= 0) std::exit(1);
          got += uint64_t(n);
        }
        char ack = 1;
        if (::send(fd, &ack, 1, MSG_NOSIGNAL) != 1) std::exit(1);
      }
    }
    ::close(fd);
  });

  int fd = connectTo("127.0.0.1", port, Deadline::in(5000));
  for (uint64_t bytes : sizes) {
    std::printf("{\"bytes\":%llu,\"reps\":%d,\"seconds\":[", (unsigned long long)bytes, reps);
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
      auto start = std::chrono::steady_clock::now();
      uint64_t sent = 0;
      while (sent < bytes) {
        ssize_t n = ::send(fd, src.data() + sent, bytes - sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) return 1;
        sent += uint64_t(n);
      }
      char ack;
      ssize_t n;
      while ((n = ::recv(fd, &ack, 1, 0)) < 0 && (errno == EAGAIN || errno == EINTR)) {
      }
      if (n != 1) return 1;
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      best = std::min(best, seconds);
      std::printf("%s%.6f", r ? "," : "", seconds);
    }
    std::printf("],\"gbps\":%.4f}\n", double(bytes) / best / 1e9);
    std::fflush(stdout);
  }
  ::close(fd);
  receiver.join();
  ::close(listenFd);
  if (std::memcmp(src.data(), dst.data(), sizes.back()) != 0) {
    std::fprintf(stderr, "baseline: received bytes differ\n");
    return 1;
  }
  return 0;
}
