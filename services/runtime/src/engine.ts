// The worker runtime's public face: submit a request, stream its tokens, watch load and KV events.
// The step loop (schedule -> executor.forward -> postprocess) lives here; policy lives in
// scheduler.ts, pages in page-allocator.ts / radix-cache.ts.

import type { ExecutorOptions, ModelExecutor, SamplingParams } from './executor-port.ts';
import type { BlockDump, KvEvent, KvEventListener } from './kv-events.ts';

export type { BlockDump, KvEvent, KvEventListener };

export interface GenerateRequest {
  requestId: string;
  promptTokenIds: readonly number[];
  /** The executor's sampling parameters. With n > 1 and a seed, choice i uses seed + i. */
  sampling: SamplingParams;
  /** Generated tokens per choice (>= 1). */
  maxTokens: number;
  /** EOS and stop ids are ignored before this many generated tokens. */
  minTokens: number;
  /** Stop after any of these (in addition to the model's EOS ids unless ignoreEos). */
  stopTokenIds: readonly number[];
  ignoreEos: boolean;
  /** Choices; they share the prompt's full pages. */
  n: number;
  /** Return each chosen token's logprob (and sampling.numTopLogprobs alternatives). */
  logprobs: boolean;
  /** Prefix-cache salt; null is the default namespace (''). */
  cacheNamespace: string | null;
}

export type FinishReason = 'stop' | 'length' | 'abort';

/** One streamed batch of tokens of one choice. A slow consumer gets several steps merged. */
export interface TokenChunk {
  choiceIndex: number;
  tokenIds: number[];
  logprobs: number[] | null; // [tokenIds.length] when request.logprobs
  topLogprobs: { tokenId: number; logprob: number }[][] | null; // [tokenIds.length][numTopLogprobs]
  /** Set on the choice's last chunk. With 'stop' the last token id is the stop token (EOS or a stop id). */
  finishReason: FinishReason | null;
  /** The stop id from request.stopTokenIds that ended the choice (null for EOS, length, abort). */
  matchedStopTokenId: number | null;
  numPromptTokens: number;
  /** Prompt tokens served from the prefix cache at first admission. */
  numCachedTokens: number;
}

export interface LoadReport {
  numWaiting: number; // sequences waiting for admission
  numRunning: number; // sequences holding pages
  numFreePages: number;
  numTotalPages: number;
  numEvictablePages: number; // cached pages no running sequence uses
  numQueuedPrefillTokens: number; // prompt tokens not computed yet (waiting + running)
  numRunningTokens: number; // tokens (prompt + output) of running sequences
}

export interface EngineStats {
  numForwardTokens: number; // tokens the executor ran a forward pass over
  numForwardCalls: number;
  numSteps: number;
  numPreemptions: number;
  numCachedPromptTokens: number; // prompt tokens served from the prefix cache, all requests
  numPromptTokens: number; // prompt tokens of all admitted requests
}

export interface SchedulerOptions {
  /** Token budget of one step (decode tokens + prefill chunks). */
  maxBatchTokens: number;
  /** Sequences holding pages at once. */
  maxRunningSequences: number;
  /** Largest prefill chunk of one sequence in one step (chunked prefill). */
  maxPrefillChunkTokens: number;
  enablePrefixCache: boolean;
  /** Waiting-queue order: first come first served, or longest cached prefix first. */
  queuePolicy: 'fcfs' | 'longest-prefix';
  /** Admission needs free (or evictable) pages for the prompt plus this many decode tokens. */
  decodeReserveTokens: number;
}

export const defaultSchedulerOptions: SchedulerOptions = {
  maxBatchTokens: 2048,
  maxRunningSequences: 256,
  maxPrefillChunkTokens: 512,
  enablePrefixCache: true,
  queuePolicy: 'fcfs',
  decodeReserveTokens: 16,
};

export interface EngineOptions {
  /** An opened executor (the engine then owns it and closes it), or the options to open one. */
  executor: ModelExecutor | ExecutorOptions;
  scheduler?: Partial<SchedulerOptions>;
}
