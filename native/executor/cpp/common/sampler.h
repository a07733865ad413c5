// Host-side sampling from one row of logits: penalties, filters, a seeded draw, logprobs.
// Shared by every backend that has the logits on the host.
#pragma once

#include <cstdint>

#include "tandem/backend.h"

namespace tandem {

// A counter-based uniform draw in [0, 1): depends only on (seed, position).
double uniformDraw(uint64_t seed, int64_t position);

// Fills out.tokenId, out.logprob, out.topLogprobs (and logits / probs when asked) from
// logits[vocabSize]. `position` is the absolute position of the token being sampled;
// `fallbackSeed` is used when the sequence has no seed.
void sampleToken(const float* logits, int32_t vocabSize, const SequenceInput& seq, int64_t position,
                 uint64_t fallbackSeed, SampleOutput& out);

// log-softmax(logits)[tokenId]
float logprobOf(const float* logits, int32_t vocabSize, int32_t tokenId);

}  // namespace tandem
