// Device sampling (see sampling.h for the semantics, shared with cpp/common/sampler.cc).
// rowKernel: one block a logits row: raw log-sum-exp, target logprob, top-N, the processed
//   (biased, masked, penalised) row, greedy argmax.
// Stochastic rows: a segmented radix sort (descending, stable) of the processed rows, then
//   stochasticKernel: softmax over the sorted row, top-k / top-p / min-p as prefix cut-offs,
//   the kept probabilities scattered back to id order and one seeded draw walked in id order.
#include <cub/cub.cuh>

#include "cuda_check.h"
#include "dtype.cuh"
#include "sampling.h"

namespace tandem::cuda {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Same function as uniformDraw() in cpp/common/sampler.cc.
__device__ __forceinline__ double uniformDraw(uint64_t seed, int64_t position) {
  const uint64_t h =
      splitmix64(splitmix64(seed) ^ splitmix64(static_cast<uint64_t>(position) + 0x632BE59BD9B4E019ull));
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

// (value, id) ordered by value descending, then id ascending.
struct Candidate {
  float value;
  int32_t id;
};

__device__ __forceinline__ bool better(const Candidate& a, const Candidate& b) {
  return a.value > b.value || (a.value == b.value && a.id < b.id);
}

struct BetterOp {
  __device__ __forceinline__ Candidate operator()(const Candidate& a, const Candidate& b) const {
    return better(a, b) ? a : b;
  }
};

using CandidateReduce = cub::BlockReduce<Candidate, kThreads>;
using DoubleReduce = cub::BlockReduce<double, kThreads>;
using FloatReduce = cub::BlockReduce<float, kThreads>;
using IntReduce = cub::BlockReduce<int32_t, kThreads>;
using DoubleScan = cub::BlockScan<double, kThreads>;

union TempStorage {
  typename CandidateReduce::TempStorage candidate;
  typename DoubleReduce::TempStorage sumDouble;
  typename FloatReduce::TempStorage maxFloat;
  typename IntReduce::TempStorage count;
  typename DoubleScan::TempStorage scan;
};

// Best candidate among row[i] strictly after `previous` in the order above.
__device__ Candidate nextBest(const float* row, int32_t vocab, Candidate previous, TempStorage& temp) {
  Candidate best{-INFINITY, INT32_MAX};
  for (int32_t i = threadIdx.x; i < vocab; i += kThreads) {
    const Candidate c{row[i], i};
    if (better(previous, c) && better(c, best)) best = c;
  }
  __syncthreads();
  const Candidate result = CandidateReduce(temp.candidate).Reduce(best, BetterOp());
  __shared__ Candidate shared;
  if (threadIdx.x == 0) shared = result;
  __syncthreads();
  return shared;
}

__global__ void __launch_bounds__(kThreads) rowKernel(SamplingArgs a, float* rowLogSumExp) {
  __shared__ TempStorage temp;
  __shared__ float sharedMax;
  __shared__ double sharedSum;
  const int32_t r = blockIdx.x;
  const SampleRow row = a.rows[r];
  const int32_t V = a.vocab;
  const float* logits = a.logits + int64_t{r} * V;

  float localMax = -INFINITY;
  for (int32_t i = threadIdx.x; i < V; i += kThreads) localMax = fmaxf(localMax, logits[i]);
  const float blockMax = FloatReduce(temp.maxFloat).Reduce(localMax, ::cuda::maximum<float>{});
  if (threadIdx.x == 0) sharedMax = blockMax;
  __syncthreads();
  const float mx = sharedMax;
  float localPartial = 0.0f;  // <= ~130 terms a thread in float, then double across threads
  for (int32_t i = threadIdx.x; i < V; i += kThreads) localPartial += expf(logits[i] - mx);
  const double localSum = localPartial;
  __syncthreads();
  const double sum = DoubleReduce(temp.sumDouble).Sum(localSum);
  if (threadIdx.x == 0) sharedSum = sum;
  __syncthreads();
  const double logSumExp = static_cast<double>(mx) + log(sharedSum);
  auto rawLogprob = [&](int32_t id) { return static_cast<float>(static_cast<double>(logits[id]) - logSumExp); };
  if (threadIdx.x == 0) {
    rowLogSumExp[r] = static_cast<float>(logSumExp);
    if (row.targetId >= 0) a.results.targetLogprobs[r] = rawLogprob(row.targetId);
  }

  Candidate previous{INFINITY, -1};
  for (int32_t k = 0; k < row.numTop; k++) {
    previous = nextBest(logits, V, previous, temp);
    if (threadIdx.x == 0) {
      a.results.topIds[int64_t{r} * a.maxTop + k] = previous.id;
      a.results.topLogprobs[int64_t{r} * a.maxTop + k] = rawLogprob(previous.id);
    }
  }
  if (row.mode == kRowLogprobOnly) return;

  float* work = a.work + int64_t{r} * V;
  const float negInf = -INFINITY;
  for (int32_t i = threadIdx.x; i < V; i += kThreads) work[i] = row.numAllowed > 0 ? negInf : logits[i];
  __syncthreads();
  for (int32_t j = threadIdx.x; j < row.numAllowed; j += kThreads) {
    const int32_t id = a.allowed[row.allowedOffset + j];
    if (id >= 0 && id < V) work[id] = logits[id];
  }
  __syncthreads();
  if (row.maskOffset >= 0) {
    const uint32_t* mask = a.masks + row.maskOffset;
    for (int32_t i = threadIdx.x; i < V; i += kThreads)
      if (((mask[i >> 5] >> (i & 31)) & 1u) == 0) work[i] = negInf;
    __syncthreads();
  }
  for (int32_t j = threadIdx.x; j < row.numEdits; j += kThreads) {
    const LogitEdit e = a.edits[row.editOffset + j];
    float w = work[e.tokenId];
    if (w == negInf) continue;  // masked: bias and penalties keep it at -inf
    w += e.bias;
    if (row.repetitionPenalty != 1.0f && e.seen) w = w < 0 ? w * row.repetitionPenalty : w / row.repetitionPenalty;
    if (e.outputCount > 0) w -= row.frequencyPenalty * static_cast<float>(e.outputCount) + row.presencePenalty;
    work[e.tokenId] = w;
  }
  __syncthreads();

  if (row.mode == kRowGreedy) {
    const Candidate best = nextBest(work, V, Candidate{INFINITY, -1}, temp);
    if (threadIdx.x == 0) {
      a.results.tokenIds[r] = best.id;
      a.results.logprobs[r] = rawLogprob(best.id);
    }
    return;
  }
  const int64_t base = int64_t{row.stochasticIndex} * V;
  for (int32_t i = threadIdx.x; i < V; i += kThreads) {
    a.keysIn[base + i] = work[i];
    a.idsIn[base + i] = i;
  }
}

// p(i) of the i-th sorted token, unnormalised: exp(x_i / T - x_0 / T) in double, as the CPU does.
struct SortedProbs {
  const float* keys;
  float temperature;
  float maxScaled;
  __device__ __forceinline__ double operator()(int32_t i) const {
    const float k = keys[i];
    if (k == -INFINITY) return 0.0;
    return exp(static_cast<double>(k / temperature) - maxScaled);
  }
};

struct DenseProbs {
  const double* dense;
  __device__ __forceinline__ double operator()(int32_t i) const { return dense[i]; }
};

template <typename Probs>
__device__ double prefixSum(const Probs& probs, int32_t n, TempStorage& temp) {
  double local = 0.0;
  for (int32_t i = threadIdx.x; i < n; i += kThreads) local += probs(i);
  __syncthreads();
  const double total = DoubleReduce(temp.sumDouble).Sum(local);
  __shared__ double shared;
  if (threadIdx.x == 0) shared = total;
  __syncthreads();
  return shared;
}

// First i < n whose inclusive prefix sum reaches target (>= when orEqual, else >), or n.
template <typename Probs>
__device__ int32_t firstCrossing(const Probs& probs, int32_t n, double target, bool orEqual, TempStorage& temp) {
  __shared__ int32_t found;
  __shared__ double carry;
  if (threadIdx.x == 0) {
    found = n;
    carry = 0.0;
  }
  __syncthreads();
  for (int32_t start = 0; start < n; start += kThreads) {
    const int32_t i = start + threadIdx.x;
    const double v = i < n ? probs(i) : 0.0;
    double inclusive, aggregate;
    DoubleScan(temp.scan).InclusiveSum(v, inclusive, aggregate);
    const double prefix = carry + inclusive;
    const bool crosses = i < n && (orEqual ? prefix >= target : prefix > target);
    __syncthreads();
    const int32_t candidate = IntReduce(temp.count).Reduce(crosses ? i : n, ::cuda::minimum<int32_t>{});
    if (threadIdx.x == 0) {
      if (candidate < found) found = candidate;
      carry += aggregate;
    }
    __syncthreads();
    if (found < n) break;
  }
  return found;
}

template <typename Pred>
__device__ int32_t countIf(int32_t n, const Pred& pred, TempStorage& temp) {
  int32_t local = 0;
  for (int32_t i = threadIdx.x; i < n; i += kThreads) local += pred(i) ? 1 : 0;
  __syncthreads();
  const int32_t total = IntReduce(temp.count).Sum(local);
  __shared__ int32_t shared;
  if (threadIdx.x == 0) shared = total;
  __syncthreads();
  return shared;
}

struct AtLeast {
  SortedProbs probs;
  double threshold;
  __device__ __forceinline__ bool operator()(int32_t i) const { return probs(i) >= threshold; }
};

__global__ void __launch_bounds__(kThreads) stochasticKernel(SamplingArgs a, const float* rowLogSumExp) {
  __shared__ TempStorage temp;
  const int32_t s = blockIdx.x;
  const int32_t r = a.stochasticRows[s];
  const SampleRow row = a.rows[r];
  const int32_t V = a.vocab;
  const float* keys = a.sortedKeys + int64_t{s} * V;
  const int32_t* ids = a.sortedIds + int64_t{s} * V;
  const SortedProbs probs{keys, row.temperature, keys[0] / row.temperature};

  int32_t kept = V;
  if (row.topK > 0 && row.topK < V) kept = countIf(V, AtLeast{probs, probs(row.topK - 1)}, temp);
  if (row.topP < 1.0f) {
    const double massK = prefixSum(probs, kept, temp);
    const int32_t crossing = firstCrossing(probs, kept, static_cast<double>(row.topP) * massK, true, temp);
    kept = min(kept, crossing + 1);
  }
  if (row.minP > 0.0f) kept = countIf(kept, AtLeast{probs, static_cast<double>(row.minP) * probs(0)}, temp);
  const double mass = prefixSum(probs, kept, temp);

  double* dense = a.dense + int64_t{s} * V;
  for (int32_t i = threadIdx.x; i < V; i += kThreads) dense[i] = 0.0;
  __syncthreads();
  for (int32_t i = threadIdx.x; i < kept; i += kThreads) dense[ids[i]] = probs(i);
  __syncthreads();
  const double u = uniformDraw(row.seed, row.position);
  int32_t chosen = firstCrossing(DenseProbs{dense}, V, u * mass, false, temp);
  if (chosen >= V) {  // rounding: u beyond the summed mass -> the last kept id
    int32_t localLast = -1;
    for (int32_t i = threadIdx.x; i < V; i += kThreads)
      if (dense[i] > 0.0) localLast = i;
    __syncthreads();
    const int32_t last = IntReduce(temp.count).Reduce(localLast, ::cuda::maximum<int32_t>{});
    __shared__ int32_t sharedLast;
    if (threadIdx.x == 0) sharedLast = last < 0 ? ids[0] : last;
    __syncthreads();
    chosen = sharedLast;
  }
  if (threadIdx.x == 0) {
    a.results.tokenIds[r] = chosen;
    a.results.logprobs[r] =
        static_cast<float>(static_cast<double>(a.logits[int64_t{r} * V + chosen]) - rowLogSumExp[r]);
  }
  if (row.returnProbs) {
    float* out = a.work + int64_t{r} * V;
    for (int32_t i = threadIdx.x; i < V; i += kThreads) out[i] = static_cast<float>(dense[i] / mass);
  }
}

__global__ void segmentOffsetsKernel(int32_t* offsets, int32_t numSegments, int32_t vocab) {
  const int32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= numSegments) offsets[i] = i * vocab;
}

}  // namespace

size_t samplingSortTempBytes(int32_t numStochastic, int32_t vocab) {
  if (numStochastic == 0) return 0;
  size_t bytes = 0;
  CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairsDescending(
      nullptr, bytes, static_cast<const float*>(nullptr), static_cast<float*>(nullptr),
      static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), int64_t{numStochastic} * vocab,
      numStochastic, static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(nullptr)));
  return bytes;
}

void sampleRows(const SamplingArgs& args, cudaStream_t stream) {
  if (args.numRows == 0) return;
  float* rowLogSumExp = args.rowLogSumExp;
  rowKernel<<<args.numRows, kThreads, 0, stream>>>(args, rowLogSumExp);
  CUDA_CHECK_LAST();
  if (args.numStochastic == 0) return;
  segmentOffsetsKernel<<<(args.numStochastic + 256) / 256, 256, 0, stream>>>(args.segmentOffsets,
                                                                              args.numStochastic, args.vocab);
  CUDA_CHECK_LAST();
  size_t tempBytes = args.sortTempBytes;
  CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairsDescending(
      args.sortTemp, tempBytes, args.keysIn, args.sortedKeys, args.idsIn, args.sortedIds,
      int64_t{args.numStochastic} * args.vocab, args.numStochastic, args.segmentOffsets, args.segmentOffsets + 1,
      0, sizeof(float) * 8, stream));
  stochasticKernel<<<args.numStochastic, kThreads, 0, stream>>>(args, rowLogSumExp);
  CUDA_CHECK_LAST();
}

}  // namespace tandem::cuda
