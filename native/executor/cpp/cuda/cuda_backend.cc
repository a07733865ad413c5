// CudaBackend: device selection, weight upload, KV pool sizing (cuda_forward.cc runs batches).
#include "cuda_backend.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "cuda_check.h"
#include "kernels.h"
#include "tandem/errors.h"

namespace tandem {

std::unique_ptr<Backend> makeCudaBackend(int32_t deviceIndex, DType computeDtype) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess)
    throw DeviceError(std::string("no usable CUDA device: ") + cudaGetErrorName(status) + " (" +
                      cudaGetErrorString(status) + "); is there a GPU and an NVIDIA driver on this machine?");
  if (count == 0) throw DeviceError("no CUDA device on this machine");
  if (deviceIndex < 0 || deviceIndex >= count)
    throw DeviceError("cuda:" + std::to_string(deviceIndex) + " does not exist (this machine has " +
                      std::to_string(count) + " CUDA device" + (count == 1 ? "" : "s") + ")");
  return std::make_unique<cuda::CudaBackend>(deviceIndex, computeDtype);
}

namespace cuda {
namespace {

size_t storedBytes(StoredDType t) { return t == StoredDType::F32 ? 4 : 2; }

// Hugging Face's inverse frequencies, in float32 as transformers computes them.
// Rounding, as measured on an H100/H200 with transformers 5.17 (bench/cuda/results/run3-h200):
// from_pretrained keeps inv_freq in float32, unrounded, whatever the dtype; only a model cast with
// .to(bfloat16) after construction has rounded frequencies (the ropeFrequencyRounding option).
std::vector<float> inverseFrequencies(const ModelConfig& c, StoredDType stored, DType compute) {
  const int32_t half = c.headDim / 2;
  std::vector<float> invFreq(static_cast<size_t>(half));
  const float base = static_cast<float>(c.rope.theta);
  for (int32_t i = 0; i < half; i++)
    invFreq[i] = 1.0f / std::pow(base, static_cast<float>(2 * i) / static_cast<float>(c.headDim));
  if (c.rope.type == RopeType::Llama3) {
    const float factor = static_cast<float>(c.rope.factor);
    const float low = static_cast<float>(c.rope.lowFreqFactor), high = static_cast<float>(c.rope.highFreqFactor);
    const float oldContext = static_cast<float>(c.rope.originalMaxPositionEmbeddings);
    const float lowFreqWavelen = oldContext / low, highFreqWavelen = oldContext / high;
    const float pi = 3.141592653589793f;
    for (float& f : invFreq) {
      const float wavelen = 2.0f * pi / f;
      float scaled = wavelen > lowFreqWavelen ? f / factor : f;
      const float smooth = (oldContext / wavelen - low) / (high - low);
      const bool medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
      if (medium) scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
      f = scaled;
    }
  }
  // An executor option (ModelConfig::roundRopeFrequenciesToStoredDtype), as on the CPU backend.
  (void)compute;
  if (!c.roundRopeFrequenciesToStoredDtype) return invFreq;
  for (float& f : invFreq) {
    if (stored == StoredDType::BF16) f = __bfloat162float(__float2bfloat16_rn(f));
    if (stored == StoredDType::F16) f = __half2float(__float2half_rn(f));
  }
  return invFreq;
}

}  // namespace

CudaBackend::CudaBackend(int32_t deviceIndex, DType computeDtype)
    : device_(deviceIndex), dtype_(computeDtype), seedSource_(std::random_device{}()) {
  CUDA_CHECK(cudaSetDevice(device_));
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  CUDA_CHECK(cudaDeviceGetAttribute(&numSms_, cudaDevAttrMultiProcessorCount, device_));
  gemm_ = std::make_unique<Gemm>(stream_);
}

CudaBackend::~CudaBackend() {
  cudaSetDevice(device_);
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  for (cudaEvent_t event : {passStart_, passEnd_, previousPassEnd_})
    if (event != nullptr) cudaEventDestroy(event);
  gemm_.reset();
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

size_t CudaBackend::elementBytes() const { return dtype_ == DType::F32 ? 4 : 2; }

void CudaBackend::upload(const TensorView& tensor, void* dst, DType dstType, int64_t dstOffsetElements) {
  const int64_t n = tensor.numBytes / static_cast<int64_t>(storedBytes(tensor.dtype));
  staging_.ensure(static_cast<size_t>(tensor.numBytes));
  CUDA_CHECK(cudaMemcpyAsync(staging_.as(), tensor.data, static_cast<size_t>(tensor.numBytes),
                             cudaMemcpyHostToDevice, stream_));
  const size_t dstElementBytes = dstType == DType::F32 ? 4 : 2;
  convertTensor(staging_.as(), tensor.dtype, static_cast<char*>(dst) + dstOffsetElements * dstElementBytes, dstType,
                n, stream_);
  // The staging buffer is reused by the next tensor: finish before returning.
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::uploadTo(DeviceBuffer& buffer, const TensorView& tensor, DType dstType) {
  const int64_t n = tensor.numBytes / static_cast<int64_t>(storedBytes(tensor.dtype));
  buffer.allocate(static_cast<size_t>(n) * (dstType == DType::F32 ? 4 : 2));
  upload(tensor, buffer.as(), dstType, 0);
}

void CudaBackend::loadWeights(const ModelConfig& c, const WeightStore& w) {
  CUDA_CHECK(cudaSetDevice(device_));
  if (!attentionSupportsHeadDim(c.headDim))
    throw ConfigError("head_dim " + std::to_string(c.headDim) + " is not supported by the CUDA backend (16, 32, 64, "
                      "128, 256)");
  if (c.numHeads % c.numKvHeads != 0)
    throw ConfigError("num_attention_heads must be a multiple of num_key_value_heads");
  config_ = c;
  const int64_t H = c.hiddenSize, D = c.headDim, I = c.intermediateSize, V = c.vocabSize;
  const int64_t qRows = c.numHeads * D, kvRows = c.numKvHeads * D, qkvRows = qRows + 2 * kvRows;
  const size_t eb = elementBytes();

  const TensorView& embedding = w.get("model.embed_tokens.weight", {V, H});
  uploadTo(embedding_, embedding, dtype_);
  if (!c.tieWordEmbeddings) uploadTo(lmHead_, w.get("lm_head.weight", {V, H}), dtype_);
  uploadTo(finalNorm_, w.get("model.norm.weight", {H}), DType::F32);
  const std::vector<float> invFreq = inverseFrequencies(c, embedding.dtype, dtype_);
  invFreq_.allocate(invFreq.size() * sizeof(float));
  CUDA_CHECK(cudaMemcpy(invFreq_.as(), invFreq.data(), invFreq.size() * sizeof(float), cudaMemcpyHostToDevice));

  layers_.clear();
  layers_.resize(static_cast<size_t>(c.numLayers));
  for (int32_t l = 0; l < c.numLayers; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights& L = layers_[l];
    L.qkv.allocate(static_cast<size_t>(qkvRows * H) * eb);
    upload(w.get(p + "self_attn.q_proj.weight", {qRows, H}), L.qkv.as(), dtype_, 0);
    upload(w.get(p + "self_attn.k_proj.weight", {kvRows, H}), L.qkv.as(), dtype_, qRows * H);
    upload(w.get(p + "self_attn.v_proj.weight", {kvRows, H}), L.qkv.as(), dtype_, (qRows + kvRows) * H);
    if (c.attentionBias) {
      L.qkvBias.allocate(static_cast<size_t>(qkvRows) * sizeof(float));
      upload(w.get(p + "self_attn.q_proj.bias", {qRows}), L.qkvBias.as(), DType::F32, 0);
      upload(w.get(p + "self_attn.k_proj.bias", {kvRows}), L.qkvBias.as(), DType::F32, qRows);
      upload(w.get(p + "self_attn.v_proj.bias", {kvRows}), L.qkvBias.as(), DType::F32, qRows + kvRows);
    }
    if (c.qkNorm) {
      uploadTo(L.qNorm, w.get(p + "self_attn.q_norm.weight", {D}), DType::F32);
      uploadTo(L.kNorm, w.get(p + "self_attn.k_norm.weight", {D}), DType::F32);
    }
    uploadTo(L.o, w.get(p + "self_attn.o_proj.weight", {H, qRows}), dtype_);
    L.gateUp.allocate(static_cast<size_t>(2 * I * H) * eb);
    upload(w.get(p + "mlp.gate_proj.weight", {I, H}), L.gateUp.as(), dtype_, 0);
    upload(w.get(p + "mlp.up_proj.weight", {I, H}), L.gateUp.as(), dtype_, I * H);
    uploadTo(L.down, w.get(p + "mlp.down_proj.weight", {H, I}), dtype_);
    uploadTo(L.inputNorm, w.get(p + "input_layernorm.weight", {H}), DType::F32);
    uploadTo(L.postNorm, w.get(p + "post_attention_layernorm.weight", {H}), DType::F32);
  }
  staging_.release();
  loaded_ = true;
}

KvPoolInfo CudaBackend::allocateKvPool(const KvPoolRequest& request) {
  CUDA_CHECK(cudaSetDevice(device_));
  if (!loaded_) throw InvalidInputError("allocateKvPool before loadWeights");
  if (request.pageSize <= 0) throw InvalidInputError("pageSize must be positive");
  const ModelConfig& c = config_;
  const int64_t pageBytes = int64_t{request.pageSize} * c.numKvHeads * c.headDim * static_cast<int64_t>(elementBytes());
  const int64_t bytesPerPage = pageBytes * 2 * c.numLayers;  // K and V of every layer
  int64_t numPages = request.numPages;
  if (numPages <= 0) {
    kvPool_.release();
    size_t freeBytes = 0, totalBytes = 0;
    CUDA_CHECK(cudaMemGetInfo(&freeBytes, &totalBytes));
    const double fraction = request.kvCacheFraction;
    if (!(fraction > 0.0 && fraction <= 1.0)) throw InvalidInputError("kvCacheFraction must be in (0, 1]");
    numPages = static_cast<int64_t>(fraction * static_cast<double>(freeBytes)) / bytesPerPage;
    if (numPages <= 0)
      throw OutOfMemoryError("no room for a KV page on cuda:" + std::to_string(device_) + " (" +
                             std::to_string(freeBytes >> 20) + " MiB free)");
  }
  if (numPages > INT32_MAX / request.pageSize) numPages = INT32_MAX / request.pageSize;
  kvPool_.allocate(static_cast<size_t>(numPages * bytesPerPage));
  CUDA_CHECK(cudaMemsetAsync(kvPool_.as(), 0, kvPool_.bytes(), stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  pool_.dtype = dtype_;
  pool_.numPages = static_cast<int32_t>(numPages);
  pool_.pageSize = request.pageSize;
  pool_.pageBytes = pageBytes;
  pool_.totalBytes = numPages * bytesPerPage;
  pool_.baseAddress = reinterpret_cast<uintptr_t>(kvPool_.as());
  return pool_;
}

void* CudaBackend::kCache(int32_t layer) const {
  return kvPool_.as<char>() + (int64_t{layer} * 2) * pool_.numPages * pool_.pageBytes;
}

void* CudaBackend::vCache(int32_t layer) const {
  return kvPool_.as<char>() + (int64_t{layer} * 2 + 1) * pool_.numPages * pool_.pageBytes;
}

}  // namespace cuda
}  // namespace tandem
