// tandem-cuda-lab logits <modelDir> <prompts.bin> <logits.bin> [bf16|f16|f32]
// Runs each prompt (prefill in one forward) and writes the logits at every position, float32
// [len, vocab] per prompt, back to back. prompts.bin: int32 count, then per prompt int32 len and
// len int32 ids (bench/cuda/hf_compare.py writes it and compares with Hugging Face).
#include <cstdio>
#include <fstream>

#include "lab.h"
#include "tandem/errors.h"

namespace tandem::lab {

int runLogitsDump(const std::vector<std::string>& args) {
  if (args.size() < 3) throw InvalidInputError("logits <modelDir> <prompts.bin> <logits.bin> [dtype]");
  const DType dtype = args.size() > 3 ? parseDtype(args[3]) : DType::BF16;
  std::ifstream in(args[1], std::ios::binary);
  if (!in) throw InvalidInputError(args[1] + ": unreadable");
  int32_t count = 0;
  in.read(reinterpret_cast<char*>(&count), 4);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(count));
  int32_t longest = 0;
  for (auto& p : prompts) {
    int32_t len = 0;
    in.read(reinterpret_cast<char*>(&len), 4);
    p.resize(static_cast<size_t>(len));
    in.read(reinterpret_cast<char*>(p.data()), 4 * int64_t{len});
    longest = std::max(longest, len);
  }
  const double t0 = nowSeconds();
  Model m = openModel(args[0], dtype, 16, (longest + 15) / 16 + 1);
  std::printf("loaded %s in %.1f s (%s)\n", args[0].c_str(), nowSeconds() - t0, dtypeName(dtype));
  std::ofstream outFile(args[2], std::ios::binary);
  const int32_t V = m.config.vocabSize;
  for (const auto& prompt : prompts) {
    PageAllocator pages(m.pool.numPages);
    SequenceInput s;
    s.tokenIds = prompt;
    pages.cover(s.pageTable, static_cast<int64_t>(prompt.size()), 16);
    for (int32_t i = 0; i < static_cast<int32_t>(prompt.size()); i++) s.sampleIndices.push_back(i);
    s.sampling.temperature = 0.0f;
    s.returnLogits = true;
    std::vector<SequenceOutput> out;
    const double t1 = nowSeconds();
    m.backend->forward({s}, out);
    std::printf("prompt of %zu tokens: forward + logits copy %.3f s\n", prompt.size(), nowSeconds() - t1);
    for (const SampleOutput& sample : out[0].samples)
      outFile.write(reinterpret_cast<const char*>(sample.logits.data()), sizeof(float) * V);
  }
  return outFile.good() ? 0 : 1;
}

}  // namespace tandem::lab
