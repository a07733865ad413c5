// tandem-cuda-lab bench <modelDir> <label> [bf16|f16|f32]
// The first benchmark: this card's measured HBM bandwidth (device-to-device copy, bytes read +
// written) and bf16 GEMM rate (cuBLASLt 8192^3, random data), then decode steps at batch
// 1..256 over a 512-token context and 1..32 over 4096 (with split-KV attention, then without),
// and single-sequence prefill of 512..8192 tokens (tensor-core attention, then CUDA-core), each
// next to its roofline. One JSON line per measurement.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <cstring>

#include "cuda/cuda_check.h"
#include "cuda/gemm.h"
#include "lab.h"
#include "tandem/errors.h"

namespace tandem::lab {
namespace {

uint32_t nextRandom(uint32_t& state) {
  state = state * 1664525u + 1013904223u;
  return state;
}

double measureCopyBandwidth() {
  const size_t bytes = size_t{2} << 30;
  void *a = nullptr, *b = nullptr;
  CUDA_CHECK(cudaMalloc(&a, bytes));
  CUDA_CHECK(cudaMalloc(&b, bytes));
  CUDA_CHECK(cudaMemset(a, 1, bytes));
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < 3; i++) CUDA_CHECK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
  const int iters = 20;
  CUDA_CHECK(cudaEventRecord(start));
  for (int i = 0; i < iters; i++) CUDA_CHECK(cudaMemcpyAsync(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice));
  CUDA_CHECK(cudaEventRecord(stop));
  CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  cudaFree(a);
  cudaFree(b);
  return 2.0 * static_cast<double>(bytes) * iters / (ms * 1e-3) / 1e9;
}

double measureGemmRate(DType dtype) {
  const int32_t n = 8192;
  const size_t elems = size_t{n} * n, eb = dtype == DType::F32 ? 4 : 2;
  std::vector<uint16_t> host16(elems);
  std::vector<float> host32(dtype == DType::F32 ? elems : 0);
  void* buf[3];
  uint32_t state = 42;
  for (int k = 0; k < 3; k++) {
    CUDA_CHECK(cudaMalloc(&buf[k], elems * eb));
    if (k == 2) break;
    for (size_t i = 0; i < elems; i++) {
      const float v = (static_cast<float>(nextRandom(state) >> 8) / 16777216.0f - 0.5f);
      if (dtype == DType::F32) {
        host32[i] = v;
      } else {
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        host16[i] = static_cast<uint16_t>(bits >> 16);  // bf16 bits (f16 runs reuse them as data)
      }
    }
    CUDA_CHECK(cudaMemcpy(buf[k], dtype == DType::F32 ? static_cast<const void*>(host32.data()) : host16.data(),
                          elems * eb, cudaMemcpyHostToDevice));
  }
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  {
    cuda::Gemm gemm(stream);
    for (int i = 0; i < 3; i++) gemm.run(buf[0], buf[1], buf[2], n, n, n, dtype, dtype);
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    const int iters = 10;
    CUDA_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < iters; i++) gemm.run(buf[0], buf[1], buf[2], n, n, n, dtype, dtype);
    CUDA_CHECK(cudaEventRecord(stop, stream));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    for (void* p : buf) cudaFree(p);
    CUDA_CHECK(cudaStreamDestroy(stream));
    return 2.0 * n * double(n) * n * iters / (ms * 1e-3) / 1e12;
  }
}

std::vector<int32_t> randomTokens(int32_t n, int32_t vocab, uint32_t& state) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = static_cast<int32_t>(nextRandom(state) % static_cast<uint32_t>(vocab));
  return ids;
}

SequenceInput step(std::vector<int32_t> ids, int32_t startPos, const std::vector<int32_t>& table, bool sample) {
  SequenceInput s;
  s.tokenIds = std::move(ids);
  s.startPos = startPos;
  s.pageTable = table;
  if (sample) s.sampleIndices = {static_cast<int32_t>(s.tokenIds.size()) - 1};
  s.sampling.temperature = 0.0f;
  return s;
}

}  // namespace

int runBench(const std::vector<std::string>& args) {
  if (args.size() < 2) throw InvalidInputError("bench <modelDir> <label> [dtype]");
  const std::string label = args[1];
  const DType dtype = args.size() > 2 ? parseDtype(args[2]) : DType::BF16;
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  const double bandwidth = measureCopyBandwidth();
  const double gemmRate = measureGemmRate(dtype);
  std::printf("{\"bench\":\"ceilings\",\"device\":\"%s\",\"hbmCopyGBs\":%.0f,\"gemm8192TFlops\":%.0f,\"dtype\":\"%s\"}\n",
              prop.name, bandwidth, gemmRate, dtypeName(dtype));

  const int32_t pageSize = 16, context = 512, longContext = 4096, decodeSteps = 32;
  const std::vector<int32_t> batches = {1, 8, 32, 64, 128, 256};
  const std::vector<int32_t> prefillLengths = {512, 1024, 2048, 4096, 8192};
  const int32_t numPages = 256 * ((context + decodeSteps + 8 + pageSize - 1) / pageSize) + 64;
  const double t0 = nowSeconds();
  Model m = openModel(args[0], dtype, pageSize, numPages);
  const ModelConfig& c = m.config;
  const double eb = dtype == DType::F32 ? 4 : 2;
  const double layerParams = double(c.hiddenSize) * (c.numHeads + 2.0 * c.numKvHeads) * c.headDim +
                             double(c.numHeads) * c.headDim * c.hiddenSize + 3.0 * c.hiddenSize * c.intermediateSize;
  const double matmulParams = layerParams * c.numLayers + double(c.vocabSize) * c.hiddenSize;  // + LM head
  const double weightBytes = (matmulParams + (c.tieWordEmbeddings ? 0.0 : double(c.vocabSize) * c.hiddenSize)) * eb;
  const double kvBytesPerToken = 2.0 * c.numLayers * c.numKvHeads * c.headDim * eb;
  std::printf("{\"bench\":\"model\",\"label\":\"%s\",\"loadSeconds\":%.1f,\"weightGB\":%.2f,\"kvPages\":%d}\n",
              label.c_str(), nowSeconds() - t0, weightBytes / 1e9, m.pool.numPages);
  uint32_t state = 1;
  std::vector<SequenceOutput> out;

  // Decode steps, each timed with split-KV attention and then without (the baseline, same run,
  // same positions: the second pass rewrites the same KV slots).
  std::vector<std::pair<int32_t, int32_t>> decodeShapes;  // (batch, context)
  for (int32_t batch : batches) decodeShapes.emplace_back(batch, context);
  for (int32_t batch : {1, 8, 32}) decodeShapes.emplace_back(batch, longContext);
  for (const auto& [batch, ctx] : decodeShapes) {
    PageAllocator pages(m.pool.numPages);
    std::vector<std::vector<int32_t>> tables(static_cast<size_t>(batch));
    std::vector<int32_t> last(static_cast<size_t>(batch));
    for (int32_t first = 0; first < batch; first += 8) {
      std::vector<SequenceInput> prefill;
      for (int32_t b = first; b < std::min(batch, first + 8); b++) {
        pages.cover(tables[b], ctx + decodeSteps + 8, pageSize);
        prefill.push_back(step(randomTokens(ctx, c.vocabSize, state), 0, tables[b], true));
      }
      m.backend->forward(prefill, out);
      for (size_t i = 0; i < out.size(); i++) last[first + i] = out[i].samples[0].tokenId;
    }
    double splitSeconds = 0;
    for (const bool split : {true, false}) {
      if (split)
        unsetenv("TANDEM_CUDA_SPLIT_KV");
      else
        setenv("TANDEM_CUDA_SPLIT_KV", "off", 1);
      double started = 0;
      for (int32_t s = 0; s < decodeSteps + 2; s++) {
        if (s == 2) started = nowSeconds();  // two warm-up steps
        std::vector<SequenceInput> decode;
        for (int32_t b = 0; b < batch; b++) decode.push_back(step({last[b]}, ctx + s, tables[b], true));
        m.backend->forward(decode, out);
        for (int32_t b = 0; b < batch; b++) last[b] = out[b].samples[0].tokenId;
      }
      const double stepSeconds = (nowSeconds() - started) / decodeSteps;
      if (split) splitSeconds = stepSeconds;
      const double bytes = weightBytes + kvBytesPerToken * batch * (ctx + decodeSteps / 2.0);
      std::printf("{\"bench\":\"decode\",\"label\":\"%s\",\"splitKv\":%s,\"batch\":%d,\"context\":%d,"
                  "\"msPerStep\":%.3f,\"tokensPerSecond\":%.0f,\"rooflineMsPerStep\":%.3f,\"fractionOfHbmRoofline\":%.2f",
                  label.c_str(), split ? "true" : "false", batch, ctx, stepSeconds * 1e3, batch / stepSeconds,
                  bytes / (bandwidth * 1e9) * 1e3, bytes / (bandwidth * 1e9) / stepSeconds);
      if (!split) std::printf(",\"splitKvSpeedup\":%.2f", stepSeconds / splitSeconds);
      std::printf("}\n");
    }
  }
  unsetenv("TANDEM_CUDA_SPLIT_KV");

  // Prefill on the tensor-core attention kernel, then on the CUDA-core one (the baseline, same run).
  std::vector<double> mmaSeconds;
  for (const char* attention : {"mma", "simt"}) {
    const bool simt = std::strcmp(attention, "simt") == 0;
    if (simt)
      setenv("TANDEM_CUDA_ATTENTION", "simt", 1);
    else
      unsetenv("TANDEM_CUDA_ATTENTION");
    for (size_t li = 0; li < prefillLengths.size(); li++) {
      const int32_t length = prefillLengths[li];
      std::vector<double> times;
      for (int rep = 0; rep < 3; rep++) {
        PageAllocator pages(m.pool.numPages);
        std::vector<int32_t> table;
        pages.cover(table, length, pageSize);
        const auto ids = randomTokens(length, c.vocabSize, state);
        const double started = nowSeconds();
        m.backend->forward({step(ids, 0, table, true)}, out);
        times.push_back(nowSeconds() - started);
      }
      std::sort(times.begin(), times.end());
      const double seconds = times[1];
      if (!simt) mmaSeconds.push_back(seconds);
      const double gemmFlops = 2.0 * layerParams * c.numLayers * length + 2.0 * double(c.vocabSize) * c.hiddenSize;
      const double attentionFlops = 4.0 * c.numLayers * c.numHeads * double(c.headDim) * length * (length + 1) / 2.0;
      std::printf("{\"bench\":\"prefill\",\"label\":\"%s\",\"attention\":\"%s\",\"tokens\":%d,\"ms\":%.1f,"
                  "\"tokensPerSecond\":%.0f,\"achievedTFlops\":%.1f,\"rooflineMs\":%.1f,\"fractionOfGemmRoofline\":%.2f",
                  label.c_str(), attention, length, seconds * 1e3, length / seconds,
                  (gemmFlops + attentionFlops) / seconds / 1e12, (gemmFlops + attentionFlops) / (gemmRate * 1e12) * 1e3,
                  (gemmFlops + attentionFlops) / (gemmRate * 1e12) / seconds);
      if (simt) std::printf(",\"mmaSpeedup\":%.2f", seconds / mmaSeconds[li]);
      std::printf("}\n");
    }
  }
  unsetenv("TANDEM_CUDA_ATTENTION");
  return 0;
}

}  // namespace tandem::lab
