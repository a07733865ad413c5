// The kvtransfer GPU lab (bench/kvtransfer/gpu_run.sh): real processes, real pools, every
// transport that this host can run, all in one call.
//   kvt_gpu_lab run [--out DIR] [--quick]      orchestrates everything below, prints a table,
//                                             writes DIR/kvtransfer_gpu.json
//   kvt_gpu_lab receiver|sender --device N --shape lab|8b [--pages P] [--seed S]
//                                             one endpoint, driven by line commands on stdin
// (a) correctness: random pool contents, page copies between two processes (one GPU: cuda_ipc,
//     tcp with staging; two GPUs: also nccl and peer cuda_ipc), every destination page compared
//     byte for byte and every other page checked untouched; failures: a sender killed
//     mid-transfer (the receiver reports it failed, never completed, and its pool stops
//     changing), a receiver killed (the sender fails cleanly and still transfers to a new one).
// (b) bandwidth: 1..256 MiB of scattered 32 KiB pages (Llama-3-8B shape, bf16) per transfer,
//     against a same-device cudaMemcpy of one contiguous buffer of that size measured in the
//     same run (and, with two GPUs, cudaMemcpyPeer), plus the copy strategies side by side.
#include <cuda_runtime.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "device.h"
#include "transport.h"

using namespace kvt;
using Clock = std::chrono::steady_clock;

namespace {

#define LAB_CUDA(call)                                                                        \
  do {                                                                                        \
    cudaError_t s_ = (call);                                                                  \
    if (s_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(s_)); \
      std::exit(3);                                                                           \
    }                                                                                         \
  } while (0)

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// ---------------------------------------------------------------------------------------------
// Shapes and page copies (the same arithmetic as src/spec.ts pageRanges).

KvSpec shapeSpec(const std::string& shape, uint32_t numPages) {
  KvSpec spec;
  spec.model = "kvt-lab-" + shape;
  if (shape == "8b") {  // Llama-3-8B: 32 KiB per page per layer for K or V
    spec.dtype = "bfloat16";
    spec.numLayers = 32;
    spec.numKvHeads = 8;
    spec.headDim = 128;
    spec.pageSize = 16;
  } else {  // small, for byte-for-byte checks: 8 KiB pages
    spec.dtype = "float16";
    spec.numLayers = 4;
    spec.numKvHeads = 4;
    spec.headDim = 64;
    spec.pageSize = 16;
  }
  spec.numPages = numPages;
  return spec;
}

std::vector<Range> pageRanges(const KvSpec& local, uint32_t remoteNumPages, const std::vector<uint32_t>& src,
                              const std::vector<uint32_t>& dst, const std::vector<uint32_t>& layers) {
  const uint64_t pb = local.pageBytes();
  std::vector<Range> out;
  for (uint32_t layer : layers) {
    for (uint32_t kv = 0; kv < 2; ++kv) {
      const uint64_t srcBase = uint64_t(layer * 2 + kv) * local.numPages;
      const uint64_t dstBase = uint64_t(layer * 2 + kv) * remoteNumPages;
      for (size_t i = 0; i < src.size(); ++i) {
        const uint64_t s = (srcBase + src[i]) * pb, d = (dstBase + dst[i]) * pb;
        if (!out.empty() && out.back().srcOffset + out.back().length == s && out.back().dstOffset + out.back().length == d)
          out.back().length += pb;
        else
          out.push_back({s, d, pb});
      }
    }
  }
  return out;
}

std::vector<uint32_t> allLayers(const KvSpec& spec) {
  std::vector<uint32_t> layers(spec.numLayers);
  for (uint32_t i = 0; i < spec.numLayers; ++i) layers[i] = i;
  return layers;
}

std::vector<uint32_t> parseList(const std::string& text) {
  std::vector<uint32_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(uint32_t(std::stoul(item)));
  return out;
}

std::string joinList(const std::vector<uint32_t>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Endpoints (child processes): a pool on one GPU, line commands in, line replies out.

std::mutex outMutex;
void reply(const char* format, ...) {
  std::lock_guard lock(outMutex);
  va_list args;
  va_start(args, format);
  std::vprintf(format, args);
  va_end(args);
  std::printf("\n");
  std::fflush(stdout);
}

std::string oneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

struct Pool {
  int device = 0;
  KvSpec spec;
  uint8_t* base = nullptr;
  uint64_t bytes = 0;

  Pool(int device_, const KvSpec& spec_) : device(device_), spec(spec_), bytes(spec_.poolBytes()) {
    LAB_CUDA(cudaSetDevice(device));
    LAB_CUDA(cudaMalloc(&base, bytes));  // one allocation: what cuda_ipc exports
    LAB_CUDA(cudaMemset(base, 0, bytes));
    LAB_CUDA(cudaDeviceSynchronize());
  }
  Region region() const { return {base, bytes, device}; }

  void fillRandom(uint64_t seed) {
    std::vector<uint64_t> host(bytes / 8);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (uint64_t& word : host) {  // splitmix64
      uint64_t z = (x += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      word = z ^ (z >> 31);
    }
    LAB_CUDA(cudaSetDevice(device));
    LAB_CUDA(cudaMemcpy(base, host.data(), bytes, cudaMemcpyHostToDevice));
  }

  std::vector<uint8_t> read() const {
    std::vector<uint8_t> host(bytes);
    LAB_CUDA(cudaSetDevice(device));
    LAB_CUDA(cudaMemcpy(host.data(), base, bytes, cudaMemcpyDeviceToHost));
    return host;
  }
};

uint64_t fnv(const std::vector<uint8_t>& data) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < data.size(); i += 64) h = (h ^ data[i] ^ (uint64_t(data[std::min(i + 7, data.size() - 1)]) << 8)) * 1099511628211ull;
  return h;
}

void writeFile(const std::string& path, const std::vector<uint8_t>& data) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
}

std::vector<uint8_t> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

int runReceiver(int device, const KvSpec& spec) {
  Pool pool(device, spec);
  ListenOptions options;
  options.host = "127.0.0.1";
  options.spec = spec;
  options.region = pool.region();
  options.ioTimeoutMs = 5000;
  static std::atomic<bool> quiet{false};  // benches turn completions off (the pipe must never fill)
  std::unique_ptr<Receiver> receiver = listen(options, [](ReceiverEvent e) {
    if (quiet && e.type == ReceiverEvent::Type::Completed) return;
    const char* name = e.type == ReceiverEvent::Type::Completed ? "completed"
                       : e.type == ReceiverEvent::Type::Failed  ? "failed"
                       : e.type == ReceiverEvent::Type::Released ? "released"
                                                                 : "rejected";
    reply("event %s %llu %llu %s %s %s", name, (unsigned long long)e.transferId, (unsigned long long)e.bytes,
          transportName(e.transport), e.type == ReceiverEvent::Type::Failed ? errorCodeName(e.code) : "-",
          oneLine(e.message).c_str());
  });
  ReceiverCapabilities caps = receiver->capabilities();
  reply("port %u ipc=%s nccl=%s rdma=%s", receiver->port(), caps.cudaIpc.ok ? "yes" : oneLine(caps.cudaIpc.reason).c_str(),
        caps.nccl.ok ? "yes" : "no", caps.rdma.ok ? "yes" : "no");
  std::string line;
  while (std::getline(std::cin, line)) {
    std::stringstream in(line);
    std::string command;
    in >> command;
    if (command == "expect") {
      uint64_t base, count;
      in >> base >> count;
      for (uint64_t i = 0; i < count; ++i) receiver->expect(base + i);
      reply("expecting %llu", (unsigned long long)base);
    } else if (command == "quiet") {
      quiet = true;
      reply("quiet");
    } else if (command == "release") {
      uint64_t id;
      in >> id;
      reply("release %llu %d", (unsigned long long)id, receiver->release(id) ? 1 : 0);
    } else if (command == "bytes") {
      uint64_t id;
      in >> id;
      reply("bytes %llu %llu", (unsigned long long)id, (unsigned long long)receiver->bytesReceived(id));
    } else if (command == "dump") {
      std::string path;
      in >> path;
      writeFile(path, pool.read());
      reply("dumped");
    } else if (command == "checksum") {
      reply("checksum %llx", (unsigned long long)fnv(pool.read()));
    } else if (command == "quit") {
      break;
    }
  }
  receiver->close();
  return 0;
}

int runSender(int device, const KvSpec& spec, uint64_t seed) {
  Pool pool(device, spec);
  if (seed != 0) pool.fillRandom(seed);
  else LAB_CUDA(cudaMemset(pool.base, 0x5A, pool.bytes));
  LAB_CUDA(cudaDeviceSynchronize());
  std::unique_ptr<Sender> sender;
  uint32_t remotePages = 0;
  std::mutex mutex;
  std::condition_variable cv;
  reply("ready");
  // Sends and waits: returns "" or "<code> <message>".
  auto sendAndWait = [&](uint64_t id, std::vector<Range> ranges, bool commit, int64_t timeoutMs, uint64_t* bytes) {
    bool finished = false;
    std::string outcome;
    try {
      sender->send(id, std::move(ranges), commit, Deadline::in(timeoutMs), 0,
                   [&](std::optional<KvtError> error, uint64_t moved) {
                     std::lock_guard lock(mutex);
                     if (error) outcome = std::string(errorCodeName(error->code())) + " " + oneLine(error->what());
                     if (bytes != nullptr) *bytes = moved;
                     finished = true;
                     cv.notify_all();
                   });
    } catch (const KvtError& error) {
      return std::string(errorCodeName(error.code())) + " " + oneLine(error.what());
    }
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return finished; });
    return outcome;
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    std::stringstream in(line);
    std::string command;
    in >> command;
    if (command == "connect") {
      uint16_t port;
      std::string transport, copyMode;
      uint32_t streams;
      in >> port >> transport >> streams >> copyMode;
      ::setenv("TANDEM_KVT_COPY_D2D", copyMode.c_str(), 1);
      if (sender) sender->close();
      sender.reset();
      ConnectOptions options;
      options.host = "127.0.0.1";
      options.port = port;
      options.numStreams = streams;
      options.spec = spec;
      options.region = pool.region();
      options.transport = parseTransportPreference(transport);
      try {
        Connected connected = connect(options, Deadline::in(30'000));
        sender = std::move(connected.sender);
        remotePages = sender->remoteNumPages();
        reply("connected %s %s", transportName(sender->transport()), oneLine(connected.reason).c_str());
      } catch (const KvtError& error) {
        reply("connected error %s %s", errorCodeName(error.code()), oneLine(error.what()).c_str());
      }
    } else if (command == "send") {  // send <id> <commit> <src,...> <dst,...> <layers|all>
      uint64_t id;
      int commit;
      std::string src, dst, layers;
      in >> id >> commit >> src >> dst >> layers;
      auto ranges = pageRanges(spec, remotePages, parseList(src), parseList(dst),
                               layers == "all" ? allLayers(spec) : parseList(layers));
      uint64_t bytes = 0;
      std::string outcome = sendAndWait(id, std::move(ranges), commit != 0, 10'000, &bytes);
      if (outcome.empty()) reply("sent %llu ok %llu", (unsigned long long)id, (unsigned long long)bytes);
      else reply("sent %llu error %s", (unsigned long long)id, outcome.c_str());
    } else if (command == "flood") {  // flood <id> <count>: uncommitted sends of every page, not waited for
      uint64_t id;
      int count;
      in >> id >> count;
      std::vector<uint32_t> pages(std::min(spec.numPages, remotePages));
      for (uint32_t i = 0; i < pages.size(); ++i) pages[i] = i;
      auto ranges = pageRanges(spec, remotePages, pages, pages, allLayers(spec));
      for (int i = 0; i < count; ++i) {
        try {
          sender->send(id, ranges, false, Deadline::in(30'000), 0, [](std::optional<KvtError>, uint64_t) {});
        } catch (const KvtError&) {
        }
      }
      reply("flooding");
    } else if (command == "bench") {
      // bench <sizeMiB> <reps> <idBase> <latency|stream>: committed transfers of scattered pages.
      //   latency  one at a time (prepare, send, commit acknowledged): what one request sees
      //   stream   `reps` transfers issued back to back, all prepared first, timed to the last
      //            acknowledgement (3 rounds): what a busy prefill worker sees
      double sizeMiB;
      int reps;
      uint64_t idBase;
      std::string mode;
      in >> sizeMiB >> reps >> idBase >> mode;
      const uint64_t pb = spec.pageBytes();
      const uint64_t bytes = uint64_t(sizeMiB * (1 << 20));
      const uint64_t perPage = 2 * spec.numLayers * pb;
      uint32_t numPages = uint32_t(std::max<uint64_t>(1, bytes / perPage));
      std::vector<uint32_t> layers = allLayers(spec);
      if (bytes < perPage) layers.resize(bytes / (2 * pb));
      std::mt19937 random{uint32_t(idBase)};
      auto nextRanges = [&] {
        std::vector<uint32_t> even;  // no two consecutive pages: every page is its own range
        for (uint32_t p = 0; p + 1 < std::min(spec.numPages, remotePages); p += 2) even.push_back(p);
        std::shuffle(even.begin(), even.end(), random);
        std::vector<uint32_t> src(even.begin(), even.begin() + numPages);
        std::shuffle(even.begin(), even.end(), random);
        std::vector<uint32_t> dst(even.begin(), even.begin() + numPages);
        return pageRanges(spec, remotePages, src, dst, layers);
      };
      const uint64_t moved = uint64_t(numPages) * layers.size() * 2 * pb;
      std::vector<double> rates;
      std::string failure;
      uint64_t id = idBase;
      failure = sendAndWait(id++, nextRanges(), true, 30'000, nullptr);  // warm-up
      if (mode == "latency") {
        for (int rep = 0; rep < reps && failure.empty(); ++rep) {
          auto ranges = nextRanges();
          auto started = Clock::now();
          sender->prepare(id);
          failure = sendAndWait(id++, std::move(ranges), true, 30'000, nullptr);
          rates.push_back(moved / seconds(Clock::now() - started) / 1e9);
        }
      } else {
        for (int round = 0; round < 3 && failure.empty(); ++round) {
          std::vector<std::vector<Range>> all;
          for (int rep = 0; rep < reps; ++rep) all.push_back(nextRanges());
          int left = reps;
          std::string firstError;
          auto started = Clock::now();
          for (int rep = 0; rep < reps; ++rep) sender->prepare(id + rep);
          for (int rep = 0; rep < reps; ++rep) {
            auto finished = [&](std::optional<KvtError> error, uint64_t) {
              std::lock_guard lock(mutex);
              if (error && firstError.empty()) firstError = errorCodeName(error->code());
              if (--left == 0) cv.notify_all();
            };
            try {
              sender->send(id + rep, std::move(all[rep]), true, Deadline::in(60'000), 0, finished);
            } catch (const KvtError& error) {
              finished(error, 0);
            }
          }
          {
            std::unique_lock lock(mutex);
            cv.wait(lock, [&] { return left == 0; });
          }
          id += reps;
          failure = firstError;
          rates.push_back(double(moved) * reps / seconds(Clock::now() - started) / 1e9);
        }
      }
      if (!failure.empty()) {
        reply("bench error %s", failure.c_str());
      } else {
        std::sort(rates.begin(), rates.end());
        reply("bench %llu %.3f %.3f", (unsigned long long)moved, rates.back(), rates[rates.size() / 2]);
      }
    } else if (command == "baseline") {  // baseline <sizeMiB> <reps> <peerDevice|-1>: one contiguous copy
      double sizeMiB;
      int reps, peer;
      in >> sizeMiB >> reps >> peer;
      const size_t bytes = size_t(sizeMiB * (1 << 20));
      const int target = peer < 0 ? device : peer;
      void *src = nullptr, *dst = nullptr;
      LAB_CUDA(cudaSetDevice(device));
      LAB_CUDA(cudaMalloc(&src, bytes));
      LAB_CUDA(cudaSetDevice(target));
      LAB_CUDA(cudaMalloc(&dst, bytes));
      LAB_CUDA(cudaSetDevice(device));
      if (target != device) {
        cudaError_t s = cudaDeviceEnablePeerAccess(target, 0);
        if (s != cudaSuccess && s != cudaErrorPeerAccessAlreadyEnabled) LAB_CUDA(s);
        cudaGetLastError();
      }
      cudaStream_t stream;
      LAB_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
      std::vector<double> times;
      for (int rep = 0; rep <= reps; ++rep) {
        auto started = Clock::now();
        if (target == device) LAB_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
        else LAB_CUDA(cudaMemcpyPeerAsync(dst, target, src, device, bytes, stream));
        LAB_CUDA(cudaStreamSynchronize(stream));
        if (rep > 0) times.push_back(seconds(Clock::now() - started));
      }
      std::sort(times.begin(), times.end());
      reply("baseline %zu %.3f %.3f", bytes, bytes / times.front() / 1e9, bytes / times[times.size() / 2] / 1e9);
      LAB_CUDA(cudaStreamDestroy(stream));
      LAB_CUDA(cudaFree(src));
      LAB_CUDA(cudaFree(dst));
    } else if (command == "copymodes") {  // copymodes <sizeMiB> <reps>: the same page scatter in-process
      double sizeMiB;
      int reps;
      in >> sizeMiB >> reps;
      const uint64_t pb = spec.pageBytes();
      const uint64_t perPage = 2 * spec.numLayers * pb;
      const uint64_t bytes = uint64_t(sizeMiB * (1 << 20));
      uint32_t numPages = uint32_t(std::max<uint64_t>(1, bytes / perPage));
      std::vector<uint32_t> layers = allLayers(spec);
      if (bytes < perPage) layers.resize(bytes / (2 * pb));
      uint8_t* other = nullptr;
      LAB_CUDA(cudaSetDevice(device));
      LAB_CUDA(cudaMalloc(&other, pool.bytes));
      std::mt19937 random(11);
      std::vector<uint32_t> even;
      for (uint32_t p = 0; p + 1 < spec.numPages; p += 2) even.push_back(p);
      std::shuffle(even.begin(), even.end(), random);
      std::vector<uint32_t> src(even.begin(), even.begin() + numPages);
      std::shuffle(even.begin(), even.end(), random);
      std::vector<uint32_t> dst(even.begin(), even.begin() + numPages);
      auto ranges = pageRanges(spec, spec.numPages, src, dst, layers);
      std::vector<device::Copy> copies;
      for (const Range& r : ranges)
        copies.push_back({reinterpret_cast<uint64_t>(other) + r.dstOffset, reinterpret_cast<uint64_t>(pool.base) + r.srcOffset,
                          r.length});
      device::Stream stream(device);
      std::string out = "copymodes " + std::to_string(ranges.size());
      for (device::CopyMode mode : {device::CopyMode::Kernel, device::CopyMode::Batch, device::CopyMode::PerRange}) {
        std::vector<double> times;
        std::string error;
        for (int rep = 0; rep <= reps && error.empty(); ++rep) {
          auto started = Clock::now();
          try {
            stream.copy(copies.data(), copies.size(), mode);
            stream.synchronize();
          } catch (const KvtError& e) {
            error = e.what();
          }
          if (rep > 0) times.push_back(seconds(Clock::now() - started));
        }
        char text[128];
        if (!error.empty()) std::snprintf(text, sizeof text, " %s=failed", device::copyModeName(mode));
        else {
          std::sort(times.begin(), times.end());
          const double moved = double(ranges.size()) * pb;
          std::snprintf(text, sizeof text, " %s=%.3f/%.3f", device::copyModeName(mode), moved / times.front() / 1e9,
                        moved / times[times.size() / 2] / 1e9);
        }
        out += text;
      }
      LAB_CUDA(cudaFree(other));
      reply("%s", out.c_str());
    } else if (command == "dump") {
      std::string path;
      in >> path;
      writeFile(path, pool.read());
      reply("dumped");
    } else if (command == "ping") {
      reply("pong");
    } else if (command == "close") {
      if (sender) sender->close();
      sender.reset();
      reply("closed");
    } else if (command == "quit") {
      break;
    }
  }
  if (sender) sender->close();
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.

std::string self;

struct Child {
  pid_t pid = -1;
  int in = -1;
  int out = -1;
  std::string buffer;
  std::vector<std::string> seen;  // every line, in order

  ~Child() { kill(); }
  void kill() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
    if (in >= 0) ::close(in);
    if (out >= 0) ::close(out);
    in = out = -1;
  }
  void send(const std::string& line) {
    std::string text = line + "\n";
    if (::write(in, text.data(), text.size()) < 0) {
    }
  }
  // The next line starting with `prefix` (earlier ones stay in `seen`); nullopt on timeout / exit.
  std::optional<std::string> waitFor(const std::string& prefix, int timeoutMs, size_t from = 0) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
    size_t scanned = from;
    for (;;) {
      for (; scanned < seen.size(); ++scanned)
        if (seen[scanned].rfind(prefix, 0) == 0) {
          std::string found = seen[scanned];
          seen[scanned] = "#" + seen[scanned];  // consumed
          return found;
        }
      int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
      if (left <= 0) return std::nullopt;
      struct pollfd p = {out, POLLIN, 0};
      if (::poll(&p, 1, left) <= 0) continue;
      char chunk[4096];
      ssize_t n = ::read(out, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buffer.append(chunk, size_t(n));
      size_t end;
      while ((end = buffer.find('\n')) != std::string::npos) {
        seen.push_back(buffer.substr(0, end));
        buffer.erase(0, end + 1);
      }
    }
  }
  bool sawPrefix(const std::string& prefix) {
    waitFor("\x01", 50);  // drain what is there
    return std::any_of(seen.begin(), seen.end(), [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
  }
};

std::unique_ptr<Child> spawn(const std::vector<std::string>& args) {
  int toChild[2], fromChild[2];
  // Close-on-exec: a child inherits only its own two ends (as stdin / stdout), not its siblings'.
  if (::pipe2(toChild, O_CLOEXEC) != 0 || ::pipe2(fromChild, O_CLOEXEC) != 0) std::exit(4);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(toChild[0], 0);
    ::dup2(fromChild[1], 1);
    ::close(toChild[1]);
    ::close(fromChild[0]);
    std::vector<char*> argv = {const_cast<char*>(self.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(self.c_str(), argv.data());
    std::_Exit(127);
  }
  ::close(toChild[0]);
  ::close(fromChild[1]);
  auto child = std::make_unique<Child>();
  child->pid = pid;
  child->in = toChild[1];
  child->out = fromChild[0];
  return child;
}

struct Lab {
  std::string out;
  int numGpus = 0;
  bool quick = false;
  std::vector<std::string> correctness;  // JSON objects
  std::vector<std::string> bandwidth;
  std::vector<std::string> copyModes;
  std::vector<std::string> tableRows;
  int failures = 0;
  std::string tmp = "/tmp/kvt-lab";

  void record(const std::string& transport, const std::string& name, bool ok, const std::string& detail) {
    std::printf("  %-4s %-9s %s%s%s\n", ok ? "ok" : "FAIL", transport.c_str(), name.c_str(), detail.empty() ? "" : ": ",
                detail.c_str());
    std::fflush(stdout);
    failures += ok ? 0 : 1;
    std::string d = detail;
    std::replace(d.begin(), d.end(), '"', '\'');
    correctness.push_back("{\"transport\":\"" + transport + "\",\"case\":\"" + name + "\",\"ok\":" +
                          (ok ? "true" : "false") + ",\"detail\":\"" + d + "\"}");
  }

  std::unique_ptr<Child> startReceiver(int device, const std::string& shape, uint32_t pages, uint16_t* port) {
    auto r = spawn({"receiver", "--device", std::to_string(device), "--shape", shape, "--pages", std::to_string(pages)});
    auto line = r->waitFor("port ", 30'000);
    if (!line) return nullptr;
    *port = uint16_t(std::stoul(line->substr(5)));
    return r;
  }

  std::unique_ptr<Child> startSender(int device, const std::string& shape, uint32_t pages, uint64_t seed) {
    auto s = spawn({"sender", "--device", std::to_string(device), "--shape", shape, "--pages", std::to_string(pages),
                    "--seed", std::to_string(seed)});
    if (!s->waitFor("ready", 30'000)) return nullptr;
    return s;
  }

  // "" when connected with the transport asked for; else why not.
  std::string connect(Child& sender, uint16_t port, const std::string& transport, const std::string& copyMode = "kernel",
                      std::string* reason = nullptr) {
    sender.send("connect " + std::to_string(port) + " " + transport + " 2 " + copyMode);
    auto line = sender.waitFor("connected ", 60'000);
    if (!line) return "no answer to connect";
    std::string rest = line->substr(10);
    if (reason != nullptr) *reason = rest;
    if (rest.rfind(transport + " ", 0) != 0) return rest;  // "error ..." or another transport
    return "";
  }

  // Every destination page equals its source page (K and V, every layer); every other page of
  // the receiver is still zero.
  std::string comparePools(const KvSpec& send, const KvSpec& recv, const std::string& senderDump,
                           const std::string& receiverDump, const std::map<uint32_t, uint32_t>& dstToSrc) {
    std::vector<uint8_t> a = readFile(senderDump), b = readFile(receiverDump);
    const uint64_t pb = send.pageBytes();
    if (a.size() != send.poolBytes() || b.size() != recv.poolBytes()) return "dump sizes differ from the pools";
    uint64_t mismatched = 0, dirty = 0;
    for (uint32_t layer = 0; layer < send.numLayers; ++layer)
      for (uint32_t kv = 0; kv < 2; ++kv)
        for (uint32_t page = 0; page < recv.numPages; ++page) {
          const uint8_t* got = b.data() + ((uint64_t(layer * 2 + kv) * recv.numPages + page) * pb);
          auto it = dstToSrc.find(page);
          if (it == dstToSrc.end()) {
            dirty += std::any_of(got, got + pb, [](uint8_t x) { return x != 0; }) ? 1 : 0;
          } else {
            const uint8_t* want = a.data() + ((uint64_t(layer * 2 + kv) * send.numPages + it->second) * pb);
            mismatched += std::memcmp(got, want, pb) != 0 ? 1 : 0;
          }
        }
    if (mismatched || dirty)
      return std::to_string(mismatched) + " copied pages differ, " + std::to_string(dirty) + " other pages written";
    return "";
  }

  // (a) correctness between two processes for one transport.
  void correctnessFor(const std::string& transport, int senderDevice, int receiverDevice) {
    const KvSpec sendSpec = shapeSpec("lab", 64), recvSpec = shapeSpec("lab", 96);
    uint16_t port = 0;
    auto receiver = startReceiver(receiverDevice, "lab", 96, &port);
    auto sender = startSender(senderDevice, "lab", 64, 1234 + senderDevice);
    if (!receiver || !sender) return record(transport, "start endpoints", false, "a process did not start");
    std::string reason;
    std::string why = connect(*sender, port, transport, "kernel", &reason);
    record(transport, "connect (forced)", why.empty(), why.empty() ? reason : why);
    if (!why.empty()) return;

    // Scattered pages, a run of consecutive ones, per-layer sends then a commit: as P pushes.
    std::vector<uint32_t> src = {3, 4, 5, 0, 63, 20, 21, 40}, dst = {10, 11, 12, 95, 1, 30, 60, 61};
    std::map<uint32_t, uint32_t> dstToSrc;
    for (size_t i = 0; i < src.size(); ++i) dstToSrc[dst[i]] = src[i];
    receiver->send("expect 100 1");
    receiver->waitFor("expecting", 5000);
    bool allSent = true;
    for (uint32_t layer = 0; layer < sendSpec.numLayers; ++layer) {
      const bool commit = layer + 1 == sendSpec.numLayers;
      sender->send("send 100 " + std::to_string(commit) + " " + joinList(src) + " " + joinList(dst) + " " +
                   std::to_string(layer));
      auto sent = sender->waitFor("sent 100 ", 15'000);
      allSent = allSent && sent && sent->find(" ok ") != std::string::npos;
      if (!allSent) {
        record(transport, "layer-by-layer send", false, sent ? *sent : "no answer");
        return;
      }
    }
    auto done = receiver->waitFor("event completed 100 ", 5000);
    const uint64_t expectedBytes = uint64_t(src.size()) * sendSpec.numLayers * 2 * sendSpec.pageBytes();
    record(transport, "receiver reports completed with the bytes and the transport",
           done && done->find(" " + std::to_string(expectedBytes) + " " + transport + " ") != std::string::npos,
           done ? *done : "no completed event");
    sender->send("dump " + tmp + "-send.bin");
    receiver->send("dump " + tmp + "-recv.bin");
    sender->waitFor("dumped", 10'000);
    receiver->waitFor("dumped", 10'000);
    why = comparePools(sendSpec, recvSpec, tmp + "-send.bin", tmp + "-recv.bin", dstToSrc);
    record(transport, "pages equal byte for byte, other pages untouched", why.empty(), why);

    // A transfer the receiver does not expect: refused, nothing written.
    sender->send("send 200 1 7 50 all");
    auto refused = sender->waitFor("sent 200 ", 10'000);
    receiver->send("dump " + tmp + "-recv2.bin");
    receiver->waitFor("dumped", 10'000);
    why = comparePools(sendSpec, recvSpec, tmp + "-send.bin", tmp + "-recv2.bin", dstToSrc);
    record(transport, "unexpected transfer refused (kv_aborted), nothing written",
           refused && refused->find("kv_aborted") != std::string::npos && why.empty(), refused ? *refused : "no answer");

    // Released after one layer: later sends refused, nothing more lands.
    receiver->send("expect 300 1");
    receiver->waitFor("expecting", 5000);
    sender->send("send 300 0 8 70 0");
    auto first = sender->waitFor("sent 300 ", 10'000);
    receiver->send("release 300");
    auto released = receiver->waitFor("release 300 ", 5000);
    bool quiet = released && (released->back() == '1' || receiver->waitFor("event released 300", 5000));
    sender->send("send 300 1 9 71 1");
    auto later = sender->waitFor("sent 300 ", 10'000);
    dstToSrc[70] = 8;  // layer 0 of page 70 landed before the release; the rest of it must not
    receiver->send("dump " + tmp + "-recv3.bin");
    receiver->waitFor("dumped", 10'000);
    std::vector<uint8_t> b = readFile(tmp + "-recv3.bin");
    const uint64_t pb = recvSpec.pageBytes();
    bool page71Clean = true;
    for (uint32_t layer = 0; layer < recvSpec.numLayers; ++layer)
      for (uint32_t kv = 0; kv < 2; ++kv) {
        const uint8_t* p = b.data() + (uint64_t(layer * 2 + kv) * recvSpec.numPages + 71) * pb;
        page71Clean = page71Clean && std::all_of(p, p + pb, [](uint8_t x) { return x == 0; });
      }
    record(transport, "release: quiet, later sends refused, nothing lands",
           first && first->find(" ok ") != std::string::npos && quiet && later &&
               later->find("kv_aborted") != std::string::npos && page71Clean,
           later ? *later : "no answer");
    sender->send("quit");
    receiver->send("quit");
  }

  // (a) failures: a sender killed mid-transfer; a receiver killed mid-transfer.
  void failuresFor(const std::string& transport, int senderDevice, int receiverDevice) {
    {
      uint16_t port = 0;
      auto receiver = startReceiver(receiverDevice, "8b", 128, &port);
      auto sender = startSender(senderDevice, "8b", 128, 0);
      if (!receiver || !sender || !connect(*sender, port, transport).empty())
        return record(transport, "sender killed: setup", false, "could not connect");
      receiver->send("expect 500 1");
      receiver->waitFor("expecting", 5000);
      sender->send("send 500 0 1 1 0");
      auto first = sender->waitFor("sent 500 ", 10'000);
      sender->send("flood 500 20");  // 20 x 256 MiB, uncommitted, in flight when it dies
      sender->waitFor("flooding", 10'000);
      auto killedAt = Clock::now();
      sender->kill();
      auto failed = receiver->waitFor("event failed 500 ", 5000);
      const double after = seconds(Clock::now() - killedAt);
      receiver->send("release 500");
      auto released = receiver->waitFor("release 500 ", 5000);
      bool quiet = released && (released->back() == '1' || receiver->waitFor("event released 500", 5000));
      receiver->send("checksum");
      auto c1 = receiver->waitFor("checksum", 10'000);
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      receiver->send("checksum");
      auto c2 = receiver->waitFor("checksum", 10'000);
      const bool neverCompleted = !receiver->sawPrefix("event completed 500");
      char detail[256];
      std::snprintf(detail, sizeof detail, "%s; failed after %.0f ms", failed ? failed->c_str() : "no failed event",
                    after * 1000);
      record(transport, "sender killed mid-transfer: failed, never completed, release quiet, pool stable",
             first && failed && neverCompleted && quiet && c1 && c2 && *c1 == *c2, detail);
      receiver->send("quit");
    }
    {
      uint16_t port = 0;
      auto receiver = startReceiver(receiverDevice, "8b", 128, &port);
      auto sender = startSender(senderDevice, "8b", 128, 0);
      if (!receiver || !sender || !connect(*sender, port, transport).empty())
        return record(transport, "receiver killed: setup", false, "could not connect");
      receiver->send("expect 600 1");
      receiver->waitFor("expecting", 5000);
      sender->send("send 600 0 1 1 0");
      sender->waitFor("sent 600 ", 10'000);
      sender->send("flood 600 20");
      sender->waitFor("flooding", 10'000);
      receiver->kill();
      auto killedAt = Clock::now();
      sender->send("send 600 1 2 2 all");
      auto failed = sender->waitFor("sent 600 ", 10'000);
      const double after = seconds(Clock::now() - killedAt);
      sender->send("ping");
      auto alive = sender->waitFor("pong", 5000);
      // The sender's GPU context is healthy: it transfers to a new receiver.
      uint16_t port2 = 0;
      auto receiver2 = startReceiver(receiverDevice, "8b", 128, &port2);
      bool again = receiver2 && connect(*sender, port2, transport).empty();
      if (again) {
        receiver2->send("expect 700 1");
        receiver2->waitFor("expecting", 5000);
        sender->send("send 700 1 3 5 all");
        auto sent = sender->waitFor("sent 700 ", 10'000);
        again = sent && sent->find(" ok ") != std::string::npos && receiver2->waitFor("event completed 700", 5000);
      }
      char detail[256];
      std::snprintf(detail, sizeof detail, "%s; after %.0f ms", failed ? failed->c_str() : "no answer", after * 1000);
      record(transport, "receiver killed: sender fails cleanly, stays usable",
             failed && failed->find(" error ") != std::string::npos && alive && again, detail);
      sender->send("quit");
      if (receiver2) receiver2->send("quit");
    }
  }

  // (b) bandwidth of one transport between two processes, next to the same run's baseline.
  void bandwidthFor(const std::string& transport, int senderDevice, int receiverDevice, const std::string& copyMode,
                    const std::map<double, double>& baselineBest, const std::string& baselineName) {
    uint16_t port = 0;
    auto receiver = startReceiver(receiverDevice, "8b", 512, &port);
    auto sender = startSender(senderDevice, "8b", 512, 0);
    std::string label = transport + (transport == "cuda_ipc" ? "/" + copyMode : "") +
                        (senderDevice != receiverDevice ? " (2 GPUs)" : "");
    if (!receiver || !sender) return;
    std::string why = connect(*sender, port, transport, copyMode);
    if (!why.empty()) {
      std::printf("| %-34s | not run: %s\n", label.c_str(), why.c_str());
      return;
    }
    receiver->send("quiet");
    receiver->waitFor("quiet", 5000);
    uint64_t id = 10'000;
    for (const char* mode : {"latency", "stream"}) {
      for (double mib : {1.0, 4.0, 16.0, 64.0, 256.0}) {
        int reps = mib <= 4 ? 30 : mib <= 16 ? 12 : mib <= 64 ? 6 : 4;
        if (std::string(mode) == "stream") reps = mib <= 16 ? 16 : 4;
        if (transport == "tcp") reps = std::max(2, reps / 4);
        if (quick) reps = 2;
        const int ids = 1 + (std::string(mode) == "stream" ? 3 * reps : reps);
        receiver->send("expect " + std::to_string(id) + " " + std::to_string(ids));
        receiver->waitFor("expecting", 5000);
        sender->send("bench " + std::to_string(mib) + " " + std::to_string(reps) + " " + std::to_string(id) + " " + mode);
        auto line = sender->waitFor("bench ", 120'000);
        id += ids;
        const std::string name = label + " " + mode;
        if (!line || line->rfind("bench error", 0) == 0) {
          std::printf("| %-34s | %7.0f | failed: %s\n", name.c_str(), mib, line ? line->c_str() : "no answer");
          failures++;
          continue;
        }
        unsigned long long bytes;
        double best, median;
        std::sscanf(line->c_str(), "bench %llu %lf %lf", &bytes, &best, &median);
        const double base = baselineBest.count(mib) ? baselineBest.at(mib) : 0;
        char row[256];
        std::snprintf(row, sizeof row, "| %-34s | %7.0f | %9.1f | %11.1f | %13.1f | %14.0f %% |", name.c_str(), mib, best,
                      median, base, base > 0 ? 100 * best / base : 0);
        std::printf("%s\n", row);
        std::fflush(stdout);
        tableRows.push_back(row);
        char json[512];
        std::snprintf(json, sizeof json,
                      "{\"transport\":\"%s\",\"copyMode\":\"%s\",\"mode\":\"%s\",\"gpus\":%d,\"mib\":%.0f,\"bytes\":%llu,"
                      "\"bestGBs\":%.3f,\"medianGBs\":%.3f,\"baseline\":\"%s\",\"baselineBestGBs\":%.3f,\"ratioBest\":%.4f}",
                      transport.c_str(), copyMode.c_str(), mode, senderDevice != receiverDevice ? 2 : 1, mib, bytes, best,
                      median, baselineName.c_str(), base, base > 0 ? best / base : 0);
        bandwidth.push_back(json);
      }
    }
    sender->send("quit");
    receiver->send("quit");
  }

  std::map<double, double> baselines(Child& probe, int peer, const std::string& name) {
    std::map<double, double> best;
    for (double mib : {1.0, 4.0, 16.0, 64.0, 256.0}) {
      probe.send("baseline " + std::to_string(mib) + " " + std::to_string(quick ? 3 : 20) + " " + std::to_string(peer));
      auto line = probe.waitFor("baseline ", 60'000);
      if (!line) continue;
      unsigned long long bytes;
      double b, m;
      std::sscanf(line->c_str(), "baseline %llu %lf %lf", &bytes, &b, &m);
      best[mib] = b;
      std::printf("  %-14s %6.0f MiB: best %8.1f GB/s, median %8.1f GB/s\n", name.c_str(), mib, b, m);
      char json[256];
      std::snprintf(json, sizeof json, "{\"transport\":\"%s\",\"mib\":%.0f,\"bytes\":%llu,\"bestGBs\":%.3f,\"medianGBs\":%.3f}",
                    name.c_str(), mib, bytes, b, m);
      bandwidth.push_back(json);
    }
    return best;
  }
};

int runLab(int argc, char** argv) {
  Lab lab;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) lab.out = argv[++i];
    else if (a == "--quick") lab.quick = true;
  }
  auto started = Clock::now();
  LAB_CUDA(cudaGetDeviceCount(&lab.numGpus));
  cudaDeviceProp prop;
  LAB_CUDA(cudaGetDeviceProperties(&prop, 0));
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  std::printf("kvtransfer GPU lab: %d x %s, driver %d, runtime %d\n", lab.numGpus, prop.name, driver, runtime);
  const char* nccl = std::getenv("TANDEM_NCCL_LIBRARY");
  std::printf("NCCL library: %s\n", nccl ? nccl : "(loader path)");

  std::printf("\n(a) correctness, two processes\n");
  std::vector<std::pair<std::string, std::pair<int, int>>> runs = {{"cuda_ipc", {0, 0}}, {"tcp", {0, 0}}};
  if (lab.numGpus >= 2) {
    runs.push_back({"cuda_ipc", {0, 1}});
    runs.push_back({"nccl", {0, 1}});
    runs.push_back({"tcp", {0, 1}});
  } else {
    std::printf("  (one GPU: nccl needs two ranks on two GPUs; not run)\n");
  }
  for (auto& [transport, devices] : runs) {
    lab.correctnessFor(transport, devices.first, devices.second);
    if (devices.first == devices.second || transport == "nccl") lab.failuresFor(transport, devices.first, devices.second);
  }

  std::printf("\n(b) bandwidth: scattered 32 KiB pages (8B shape, bf16), committed transfers\n");
  auto probe = lab.startSender(0, "8b", 512, 0);
  std::map<double, double> sameDevice = lab.baselines(*probe, -1, "cudaMemcpy D2D");
  std::map<double, double> peer;
  if (lab.numGpus >= 2) peer = lab.baselines(*probe, 1, "cudaMemcpyPeer");
  std::printf("  copy strategies in one process (the same scatter; best/median GB/s):\n");
  for (double mib : {1.0, 16.0, 256.0}) {
    probe->send("copymodes " + std::to_string(mib) + " " + std::to_string(lab.quick ? 3 : 10));
    auto line = probe->waitFor("copymodes ", 60'000);
    std::printf("    %6.0f MiB: %s\n", mib, line ? line->c_str() + 10 : "no answer");
    if (line) lab.copyModes.push_back("{\"mib\":" + std::to_string(int(mib)) + ",\"line\":\"" + line->substr(10) + "\"}");
  }
  probe->send("quit");
  std::printf("\nlatency: one transfer at a time, prepare + send + commit acknowledged; stream: transfers back to\n"
              "back, timed to the last acknowledgement. baseline: one contiguous copy of the same size.\n");
  std::printf("| transport                          |     MiB | best GB/s | median GB/s | baseline GB/s | best / baseline |\n");
  std::printf("| ---------------------------------- | ------: | --------: | ----------: | ------------: | --------------: |\n");
  lab.bandwidthFor("cuda_ipc", 0, 0, "kernel", sameDevice, "cudaMemcpy D2D");
  lab.bandwidthFor("cuda_ipc", 0, 0, "batch", sameDevice, "cudaMemcpy D2D");
  if (!lab.quick) lab.bandwidthFor("cuda_ipc", 0, 0, "per_range", sameDevice, "cudaMemcpy D2D");
  lab.bandwidthFor("tcp", 0, 0, "kernel", sameDevice, "cudaMemcpy D2D");
  if (lab.numGpus >= 2) {
    lab.bandwidthFor("cuda_ipc", 0, 1, "kernel", peer, "cudaMemcpyPeer");
    lab.bandwidthFor("cuda_ipc", 0, 1, "batch", peer, "cudaMemcpyPeer");
    lab.bandwidthFor("nccl", 0, 1, "kernel", peer, "cudaMemcpyPeer");
  }
  const double total = seconds(Clock::now() - started);
  std::printf("\nlab: %d failure(s), %.0f s\n", lab.failures, total);

  if (!lab.out.empty()) {
    std::ofstream json(lab.out + "/kvtransfer_gpu.json");
    auto list = [](const std::vector<std::string>& items) {
      std::string s = "[";
      for (size_t i = 0; i < items.size(); ++i) s += (i ? ",\n  " : "\n  ") + items[i];
      return s + "]";
    };
    json << "{\"device\":\"" << prop.name << "\",\"gpus\":" << lab.numGpus << ",\"driver\":" << driver
         << ",\"runtime\":" << runtime << ",\"seconds\":" << total << ",\"failures\":" << lab.failures
         << ",\n\"correctness\":" << list(lab.correctness) << ",\n\"bandwidth\":" << list(lab.bandwidth)
         << ",\n\"copyModes\":" << list(lab.copyModes) << "}\n";
  }
  return lab.failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  char path[4096];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  self = n > 0 ? std::string(path, size_t(n)) : argv[0];
  if (argc < 2) {
    std::fprintf(stderr, "usage: kvt_gpu_lab run [--out DIR] [--quick] | receiver|sender --device N --shape lab|8b\n");
    return 2;
  }
  const std::string mode = argv[1];
  if (mode == "run") return runLab(argc, argv);
  int device = 0;
  uint32_t pages = 64;
  uint64_t seed = 0;
  std::string shape = "lab";
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--device") device = std::atoi(argv[i + 1]);
    else if (a == "--shape") shape = argv[i + 1];
    else if (a == "--pages") pages = uint32_t(std::atoi(argv[i + 1]));
    else if (a == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
  }
  const KvSpec spec = shapeSpec(shape, pages);
  if (mode == "receiver") return runReceiver(device, spec);
  if (mode == "sender") return runSender(device, spec, seed);
  return 2;
}
