// tandem-cuda-lab attention
// The attention kernels against a float64 host reference on random data: the CUDA-core kernel
// (attention.cu, whole and with its keys split 7 ways) and the tensor-core prefill kernel
// (attention_mma.cu), bf16 and f16,
// head_dim 64 and 128, GQA and MHA, page sizes 1/16/64 with shuffled page tables, chunks over a
// cached prefix and chunk lengths around the 64-token block. The tensor-core kernel passes when
// its error is within 3x the CUDA-core kernel's (which computes in float32 and only rounds its
// output) plus a small floor.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <thread>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/device_buffer.h"
#include "cuda/kernels.h"
#include "lab.h"

namespace tandem::lab {
namespace {

using cuda::AttentionArgs;
using cuda::AttentionBlock;
using cuda::DeviceBuffer;

struct Case {
  DType dtype;
  int32_t headDim, numHeads, numKvHeads, pageSize;
  float qScale;  // larger: sharper softmax
};

struct Chunk {
  int32_t startPos, numTokens;
};

uint16_t toBits(float v, DType dtype) {
  if (dtype == DType::BF16) {
    const __nv_bfloat16 b = __float2bfloat16_rn(v);
    return *reinterpret_cast<const uint16_t*>(&b);
  }
  const __half h = __float2half_rn(v);
  return *reinterpret_cast<const uint16_t*>(&h);
}

float fromBits(uint16_t bits, DType dtype) {
  if (dtype == DType::BF16) return __bfloat162float(*reinterpret_cast<const __nv_bfloat16*>(&bits));
  return __half2float(*reinterpret_cast<const __half*>(&bits));
}

struct Errors {
  double maxAbs = 0, sumAbs = 0;
  int64_t count = 0;
};

Errors compare(const std::vector<uint16_t>& got, const std::vector<double>& ref, DType dtype) {
  Errors e;
  for (size_t i = 0; i < ref.size(); i++) {
    const double d = std::abs(double(fromBits(got[i], dtype)) - ref[i]);
    e.maxAbs = std::max(e.maxAbs, std::isnan(d) ? INFINITY : d);
    e.sumAbs += d;
    e.count++;
  }
  return e;
}

bool runCase(const Case& c, uint32_t seed) {
  // Prefill chunks, some over a cached prefix, and decode steps (one token over a long context).
  const std::vector<Chunk> chunks = {{0, 16},  {0, 65},   {37, 100}, {300, 200}, {0, 700},
                                     {900, 37}, {64, 64}, {2047, 1}, {129, 1},   {5, 1}};
  const int32_t D = c.headDim, group = c.numHeads / c.numKvHeads;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);

  // Page tables: every sequence's pages, drawn from one shuffled pool.
  int32_t numPages = 0;
  for (const Chunk& ch : chunks) numPages += (ch.startPos + ch.numTokens + c.pageSize - 1) / c.pageSize;
  std::vector<int32_t> pool(static_cast<size_t>(numPages));
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  std::vector<int32_t> pageTables, positions, tableOffsets, tokenBases;
  int32_t numTokens = 0;
  for (const Chunk& ch : chunks) {
    tableOffsets.push_back(static_cast<int32_t>(pageTables.size()));
    const int32_t pages = (ch.startPos + ch.numTokens + c.pageSize - 1) / c.pageSize;
    for (int32_t p = 0; p < pages; p++) pageTables.push_back(pool[pageTables.size()]);
    tokenBases.push_back(numTokens);
    for (int32_t i = 0; i < ch.numTokens; i++) positions.push_back(ch.startPos + i);
    numTokens += ch.numTokens;
  }

  const int64_t slotStride = int64_t{c.numKvHeads} * D;
  std::vector<uint16_t> kHost(static_cast<size_t>(numPages) * c.pageSize * slotStride);
  std::vector<uint16_t> vHost(kHost.size()), qHost(static_cast<size_t>(numTokens) * c.numHeads * D);
  for (auto& x : kHost) x = toBits(normal(rng), c.dtype);
  for (auto& x : vHost) x = toBits(normal(rng), c.dtype);
  for (auto& x : qHost) x = toBits(normal(rng) * c.qScale, c.dtype);
  const double scale = 1.0 / std::sqrt(double(D));

  // float64 reference over the rounded inputs, tokens spread over the host's cores.
  std::vector<double> ref(qHost.size());
  auto referenceFor = [&](size_t chunk, int32_t i) {
    const Chunk& ch = chunks[chunk];
    const int32_t t = tokenBases[chunk] + i, pos = ch.startPos + i;
    std::vector<double> scores(static_cast<size_t>(pos) + 1);
    for (int32_t h = 0; h < c.numHeads; h++) {
      const int32_t kvh = h / group;
      const uint16_t* qRow = &qHost[(size_t(t) * c.numHeads + h) * D];
      double maxScore = -INFINITY;
      for (int32_t key = 0; key <= pos; key++) {
        const int64_t slot = int64_t{pageTables[tableOffsets[chunk] + key / c.pageSize]} * c.pageSize + key % c.pageSize;
        const uint16_t* kRow = &kHost[size_t(slot * slotStride + kvh * D)];
        double dot = 0;
        for (int32_t d = 0; d < D; d++) dot += double(fromBits(qRow[d], c.dtype)) * fromBits(kRow[d], c.dtype);
        scores[key] = dot * scale;
        maxScore = std::max(maxScore, scores[key]);
      }
      double sum = 0;
      for (auto& s : scores) sum += (s = std::exp(s - maxScore));
      double* out = &ref[(size_t(t) * c.numHeads + h) * D];
      std::fill(out, out + D, 0.0);
      for (int32_t key = 0; key <= pos; key++) {
        const int64_t slot = int64_t{pageTables[tableOffsets[chunk] + key / c.pageSize]} * c.pageSize + key % c.pageSize;
        const uint16_t* vRow = &vHost[size_t(slot * slotStride + kvh * D)];
        for (int32_t d = 0; d < D; d++) out[d] += scores[key] / sum * fromBits(vRow[d], c.dtype);
      }
    }
  };
  std::vector<std::pair<size_t, int32_t>> work;
  for (size_t ch = 0; ch < chunks.size(); ch++)
    for (int32_t i = 0; i < chunks[ch].numTokens; i++) work.emplace_back(ch, i);
  const unsigned numThreads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> threads;
  for (unsigned w = 0; w < numThreads; w++)
    threads.emplace_back([&, w] {
      for (size_t i = w; i < work.size(); i += numThreads) referenceFor(work[i].first, work[i].second);
    });
  for (auto& th : threads) th.join();

  // Block lists for each kernel, planned as the backend plans them.
  const int32_t headsPerBlock = cuda::attentionHeadsPerBlock(group);
  const int32_t tokensPerBlock = std::max(1, cuda::kAttentionRowsPerBlock / headsPerBlock);
  std::vector<AttentionBlock> simtBlocks, mmaBlocks;
  for (size_t ch = 0; ch < chunks.size(); ch++) {
    const Chunk& chunk = chunks[ch];
    cuda::appendAttentionBlocks(simtBlocks, tokenBases[ch], chunk.numTokens, tableOffsets[ch], chunk.startPos,
                                tokensPerBlock);
    cuda::appendAttentionBlocks(mmaBlocks, tokenBases[ch], chunk.numTokens, tableOffsets[ch], chunk.startPos,
                                cuda::kAttentionMmaTokensPerBlock);
  }

  auto upload = [](DeviceBuffer& buffer, const void* data, size_t bytes) {
    buffer.allocate(bytes);
    CUDA_CHECK(cudaMemcpy(buffer.as(), data, bytes, cudaMemcpyHostToDevice));
  };
  DeviceBuffer dK, dV, dQ, dOut, dTables, dPositions, dSimt, dMma;
  upload(dK, kHost.data(), kHost.size() * 2);
  upload(dV, vHost.data(), vHost.size() * 2);
  upload(dQ, qHost.data(), qHost.size() * 2);
  upload(dTables, pageTables.data(), pageTables.size() * 4);
  upload(dPositions, positions.data(), positions.size() * 4);
  upload(dSimt, simtBlocks.data(), simtBlocks.size() * sizeof(AttentionBlock));
  upload(dMma, mmaBlocks.data(), mmaBlocks.size() * sizeof(AttentionBlock));
  dOut.allocate(qHost.size() * 2);

  AttentionArgs a;
  a.q = dQ.as();
  a.out = dOut.as();
  a.kCache = dK.as();
  a.vCache = dV.as();
  a.pageTables = dTables.as<int32_t>();
  a.positions = dPositions.as<int32_t>();
  a.numHeads = c.numHeads;
  a.numKvHeads = c.numKvHeads;
  a.headDim = D;
  a.pageSize = c.pageSize;
  a.headsPerBlock = headsPerBlock;
  a.scale = static_cast<float>(scale);
  std::vector<uint16_t> got(qHost.size());
  DeviceBuffer dSplits;
  auto run = [&](bool mma, int32_t numSplits) {
    CUDA_CHECK(cudaMemset(dOut.as(), 0xff, qHost.size() * 2));  // NaN: every output must be written
    a.blocks = mma ? dMma.as<AttentionBlock>() : dSimt.as<AttentionBlock>();
    a.numBlocks = static_cast<int32_t>(mma ? mmaBlocks.size() : simtBlocks.size());
    a.numSplits = numSplits;
    if (const int64_t floats = cuda::attentionSplitFloats(a); floats > 0) {
      dSplits.allocate(static_cast<size_t>(floats) * sizeof(float));
      cuda::setAttentionSplitBuffer(a, dSplits.as<float>());
    }
    if (mma)
      cuda::prefillAttentionMma(a, c.dtype, nullptr);
    else
      cuda::pagedAttention(a, c.dtype, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(got.data(), dOut.as(), got.size() * 2, cudaMemcpyDeviceToHost));
    return compare(got, ref, c.dtype);
  };
  const Errors simt = run(false, 1), split = run(false, 7), mma = run(true, 1);
  const double simtMean = simt.sumAbs / simt.count, splitMean = split.sumAbs / split.count,
               mmaMean = mma.sumAbs / mma.count;
  const bool pass = mma.maxAbs <= 3 * simt.maxAbs + 1e-3 && mmaMean <= 3 * simtMean + 1e-4 &&
                    split.maxAbs <= 1.5 * simt.maxAbs + 1e-4 && splitMean <= 1.5 * simtMean + 1e-5;
  std::printf(
      "{\"check\":\"attention\",\"dtype\":\"%s\",\"headDim\":%d,\"heads\":%d,\"kvHeads\":%d,\"pageSize\":%d,"
      "\"qScale\":%.0f,\"tokens\":%d,\"simtMaxAbs\":%.3g,\"simtMeanAbs\":%.3g,\"split7MaxAbs\":%.3g,\"split7MeanAbs\":%.3g,"
      "\"mmaMaxAbs\":%.3g,\"mmaMeanAbs\":%.3g,"
      "\"pass\":%s}\n",
      dtypeName(c.dtype), D, c.numHeads, c.numKvHeads, c.pageSize, c.qScale, numTokens, simt.maxAbs, simtMean,
      split.maxAbs, splitMean, mma.maxAbs, mmaMean, pass ? "true" : "false");
  return pass;
}

}  // namespace

int runAttentionCheck(const std::vector<std::string>& args) {
  std::vector<Case> cases;
  for (DType dtype : {DType::BF16, DType::F16})
    for (int32_t headDim : {64, 128}) {
      cases.push_back({dtype, headDim, 8, 2, 16, 1.0f});
      cases.push_back({dtype, headDim, 4, 4, 1, 1.0f});
      cases.push_back({dtype, headDim, 8, 1, 64, 1.0f});
    }
  cases.push_back({DType::BF16, 128, 8, 2, 16, 6.0f});
  cases.push_back({DType::F16, 64, 8, 2, 16, 6.0f});
  bool all = true;
  uint32_t seed = 1;
  for (const Case& c : cases) all = runCase(c, seed++) && all;
  return all ? 0 : 1;
}

}  // namespace tandem::lab
