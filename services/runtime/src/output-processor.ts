// Output and stop handling: a sampled token joins its sequence, the stop conditions (EOS, stop
// ids, min_tokens, max_tokens, the model's length) decide whether the choice ends, and the
// choice's consumer receives the token as a chunk.
// Contract: one chunk per appended token; the choice's last chunk carries its finishReason. It
// does not end the sequence: when a reason comes back the caller calls Scheduler.finish at once,
// which takes the sequence out of its queue and frees (or holds) its pages.

import type { FinishReason } from './engine.ts';
import type { SampleOutput } from './executor-port.ts';
import type { Sequence } from './sequence.ts';

export class OutputProcessor {
  private readonly eosTokenIds: Set<number>;
  private readonly maxModelLen: number | null;

  constructor(eosTokenIds: readonly number[], maxModelLen: number | null) {
    this.eosTokenIds = new Set(eosTokenIds);
    this.maxModelLen = maxModelLen;
  }

  /** Appends the sampled token and emits it; returns why the choice ends, or null if it goes on. */
  appendToken(seq: Sequence, sample: SampleOutput): FinishReason | null {
    const token = sample.tokenId;
    seq.tokenIds.push(token);
    const request = seq.state.request;
    const numOutput = seq.numOutputTokens;
    let finishReason: FinishReason | null = null;
    let matchedStopTokenId: number | null = null;
    const matcher = seq.constraint?.matcher ?? null;
    if (matcher !== null && !matcher.acceptToken(token)) {
      // The executor sampled outside the mask (it cannot) or a remote prefill did not apply it.
      finishReason = 'abort';
    } else if (matcher?.isCompleted() === true) {
      // The constrained output is complete (EOS accepted): nothing else may follow, whatever
      // ignore_eos or min_tokens say.
      finishReason = 'stop';
    } else if (numOutput >= request.minTokens) {
      if (!request.ignoreEos && this.eosTokenIds.has(token)) {
        finishReason = 'stop';
      } else if (request.stopTokenIds.includes(token)) {
        finishReason = 'stop';
        matchedStopTokenId = token;
      }
    }
    const maxModelLen = this.maxModelLen;
    if (
      finishReason === null &&
      (numOutput >= request.maxTokens || (maxModelLen !== null && seq.tokenIds.length >= maxModelLen))
    ) {
      finishReason = 'length';
    }
    // A refused token is not output: the choice ends without it.
    if (finishReason === 'abort') emitChunk(seq, [], null, 'abort', null);
    else emitChunk(seq, [token], sample, finishReason, matchedStopTokenId);
    return finishReason;
  }
}

/** Sends one chunk of a choice to its request's consumer (no tokens: an 'abort' or 'length' end). */
export function emitChunk(
  seq: Sequence,
  tokenIds: number[],
  sample: SampleOutput | null,
  finishReason: FinishReason | null,
  matchedStopTokenId: number | null,
): void {
  const request = seq.state.request;
  const withLogprobs = request.logprobs;
  seq.state.emit({
    choiceIndex: seq.choiceIndex,
    tokenIds,
    logprobs: withLogprobs ? (sample === null ? [] : [sample.logprob]) : null,
    topLogprobs: withLogprobs ? (sample === null ? [] : [sample.topLogprobs]) : null,
    finishReason,
    matchedStopTokenId,
    numPromptTokens: seq.numPromptTokens,
    numCachedTokens: seq.numCachedTokens ?? 0,
  });
}
