// The worker runtime's public face: submit a request, stream its tokens, watch load and KV events.
// The step loop (schedule -> executor.forward -> postprocess) lives here; policy lives in
// scheduler.ts (and the files it names), pages in sequence-pages.ts / page-allocator.ts / radix-cache.ts.

import { Executor } from '@tandem/executor';
import { ChunkStream } from './chunk-stream.ts';
import type { TokenConstraint } from './constraint.ts';
import { EngineClosedError, ExecutorFailedError } from './errors.ts';
import type {
  ExecutorOptions,
  KvLayout,
  ModelExecutor,
  ModelInfo,
  SamplingParams,
  SequenceOutput,
} from './executor-port.ts';
import { type BlockDump, type KvEvent, type KvEventListener, KvEventLog } from './kv-events.ts';
import { type GenerateHooks, type ScheduledBatch, Scheduler } from './scheduler.ts';

export type { TokenConstraint, TokenMatcher } from './constraint.ts';
export type { GenerateHooks } from './scheduler.ts';
export type {
  ComputedPages,
  FirstToken,
  PrefillOnly,
  PrefillReservation,
  RemotePrefill,
} from './sequence.ts';
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
  /**
   * Constrained decoding (null: none): every choice's output matches it. Compile it before
   * generate() (compiling can take seconds; the step loop only fills masks and accepts tokens).
   */
  constraint: TokenConstraint | null;
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
  numQueuedPrefillTokens: number; // prompt tokens to compute: waiting (less cached prefix) + running
  numRunningTokens: number; // tokens (prompt + output) of running sequences
}

export interface EngineStats {
  numForwardTokens: number; // tokens the executor ran a forward pass over
  numForwardCalls: number;
  numSteps: number;
  numPreemptions: number;
  numEvictedPages: number; // cached pages evicted to make room
  numCachedPromptTokens: number; // prompt tokens served from the prefix cache, all requests
  numPromptTokens: number; // prompt tokens of all admitted requests
  /** The device's time on forward passes and idle between them, ms (executor clock; ExecutorStats). */
  deviceBusyMs: number;
  deviceIdleMs: number;
  /** The same over passes of at least 64 sequences. */
  deviceBusyMsLarge: number;
  deviceIdleMsLarge: number;
}

/** One step as the metrics see it (Engine.onStep). */
export interface StepReport {
  numSequences: number;
  /** Prompt positions computed this step (prefill chunks, recomputation after preemption included). */
  numPrefillTokens: number;
  /** Generated positions computed this step (one per decoding sequence). */
  numDecodeTokens: number;
  /** Schedule, forward pass and postprocess, seconds. */
  seconds: number;
}

export type StepListener = (step: StepReport) => void;

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

/**
 * On a GPU a step costs about the same from 256 to 512 sequences and from 2k to 8k tokens, so
 * bigger steps are nearly free throughput: measured on an H100 through `tandem up` (issue 12's
 * table), sharegpt-like output tok/s went from 9,976 to 11,413 (1B) and 5,178 to 5,257 (8B).
 */
export const gpuSchedulerOptions: SchedulerOptions = {
  ...defaultSchedulerOptions,
  maxBatchTokens: 8192,
  maxRunningSequences: 512,
};

/** The defaults for where the pool lives ('cpu' or 'cuda:N'). */
export function schedulerDefaultsFor(device: string): SchedulerOptions {
  return device === 'cpu' ? defaultSchedulerOptions : gpuSchedulerOptions;
}

export interface EngineOptions {
  /** An opened executor (the engine then owns it and closes it), or the options to open one. */
  executor: ModelExecutor | ExecutorOptions;
  scheduler?: Partial<SchedulerOptions>;
}

export class Engine {
  readonly modelInfo: ModelInfo;
  readonly kvLayout: KvLayout;
  private readonly executor: ModelExecutor;
  private readonly scheduler: Scheduler;
  private readonly events = new KvEventLog();
  private readonly stepListeners = new Set<StepListener>();
  private loop: Promise<void> | null = null;
  private kickAgain = false;
  private closed = false;

  static async create(options: EngineOptions): Promise<Engine> {
    const executor = 'forward' in options.executor ? options.executor : await Executor.open(options.executor);
    const defaults = schedulerDefaultsFor(executor.kvLayout.device);
    const given = Object.fromEntries(
      Object.entries(options.scheduler ?? {}).filter(([, value]) => value !== undefined),
    ) as Partial<SchedulerOptions>;
    return new Engine(executor, { ...defaults, ...given });
  }

  constructor(executor: ModelExecutor, options: SchedulerOptions) {
    this.executor = executor;
    this.modelInfo = executor.info;
    this.kvLayout = executor.kvLayout;
    this.scheduler = new Scheduler(
      options,
      {
        numPages: executor.kvLayout.numPages,
        pageSize: executor.kvLayout.pageSize,
        eosTokenIds: executor.info.eosTokenIds,
        vocabSize: executor.info.vocabSize,
        maxModelLen: executor.info.maxPositionEmbeddings,
      },
      this.events,
    );
    this.scheduler.wake = () => this.wake();
  }

  get pageSize(): number {
    return this.kvLayout.pageSize;
  }

  /**
   * Streams the request's chunks. Throws synchronously when the request can never run. Aborting
   * `signal`, calling abort(), or leaving the loop early ends every choice ('abort') and frees its
   * pages; an executor failure ends the stream with ExecutorFailedError.
   */
  generate(
    request: GenerateRequest,
    signal?: AbortSignal,
    hooks: GenerateHooks = {},
  ): AsyncIterable<TokenChunk> {
    if (this.closed) throw new EngineClosedError();
    const requestId = request.requestId;
    const stream = new ChunkStream(() => this.abort(requestId));
    const onAbort = (): void => {
      this.abort(requestId);
    };
    this.scheduler.addRequest(
      request,
      (chunk) => stream.push(chunk),
      (error) => {
        signal?.removeEventListener('abort', onAbort);
        stream.end(error);
      },
      hooks,
    );
    if (signal?.aborted) this.abort(requestId);
    else signal?.addEventListener('abort', onAbort, { once: true });
    this.kick();
    return stream;
  }

  /** Ends a live request ('abort'), or frees a finished prefill-only request's held pages. */
  abort(requestId: string): boolean {
    const found = this.scheduler.abort(requestId) || this.scheduler.releasePrefill(requestId);
    this.wake(); // freed pages may admit a waiting request
    return found;
  }

  /** Frees the pages a finished prefill-only request (hooks.prefillOnly) still holds. */
  releasePrefill(requestId: string): boolean {
    const found = this.scheduler.releasePrefill(requestId);
    this.wake();
    return found;
  }

  load(): LoadReport {
    return this.scheduler.load();
  }

  onKvEvent(listener: KvEventListener): () => void {
    return this.events.subscribe(listener);
  }

  /** Reports every step (the worker's metrics, its step-cost fit); returns the unsubscribe function. */
  onStep(listener: StepListener): () => void {
    this.stepListeners.add(listener);
    return () => {
      this.stepListeners.delete(listener);
    };
  }

  dumpBlocks(): BlockDump {
    return this.scheduler.cache?.dumpBlocks() ?? { seq: this.events.seq, blocks: [] };
  }

  stats(): EngineStats {
    const counters = this.scheduler.counters;
    return {
      numForwardTokens: this.executor.stats.forwardTokens,
      numForwardCalls: this.executor.stats.forwardCalls,
      numSteps: counters.numSteps,
      numPreemptions: counters.numPreemptions,
      numEvictedPages: counters.numEvictedPages,
      numCachedPromptTokens: counters.numCachedPromptTokens,
      numPromptTokens: counters.numPromptTokens,
      deviceBusyMs: this.executor.stats.deviceBusyMs,
      deviceIdleMs: this.executor.stats.deviceIdleMs,
      deviceBusyMsLarge: this.executor.stats.deviceBusyMsLarge,
      deviceIdleMsLarge: this.executor.stats.deviceIdleMsLarge,
    };
  }

  /** Refcount bookkeeping check (tests): throws when a page's count differs from its holders. */
  checkInvariants(): void {
    this.scheduler.checkInvariants();
  }

  /** Fails every live request with EngineClosedError, waits for the current step, closes the executor. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.loop;
    this.scheduler.failAll(new EngineClosedError());
    await this.executor.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private wake(): void {
    if (this.closed || !this.scheduler.hasWork) {
      this.kickAgain = false;
      return;
    }
    this.kick();
  }

  private kick(): void {
    if (this.loop !== null) {
      // The loop may already have seen nothing to do and be about to end: run again after it.
      this.kickAgain = true;
      return;
    }
    this.kickAgain = false;
    this.loop = this.runSteps().finally(() => {
      this.loop = null;
      if (this.kickAgain) this.wake();
    });
  }

  /** schedule -> forward (off the JS thread) -> postprocess, until nothing is left to run. */
  private async runSteps(): Promise<void> {
    while (!this.closed) {
      const startedAt = this.stepListeners.size === 0 ? 0 : performance.now();
      let batch: ScheduledBatch | null;
      try {
        batch = this.scheduler.schedule();
      } catch (error) {
        this.scheduler.failAll(error); // a bookkeeping bug: fail what is live, keep serving
        continue;
      }
      if (batch === null) return;
      let outputs: SequenceOutput[];
      try {
        const onLayerDone = this.scheduler.layerListener(batch);
        outputs = await this.executor.forward(batch.inputs, onLayerDone === null ? {} : { onLayerDone });
      } catch (error) {
        this.scheduler.failAll(new ExecutorFailedError(error));
        continue;
      }
      if (this.closed) return;
      try {
        this.scheduler.postprocess(batch, outputs);
      } catch (error) {
        // A bookkeeping bug: fail what is live rather than leave streams hanging.
        this.scheduler.failAll(error);
      }
      if (this.stepListeners.size > 0) this.reportStep(batch, startedAt);
    }
  }

  private reportStep(batch: ScheduledBatch, startedAt: number): void {
    let numPrefillTokens = 0;
    for (const item of batch.items) {
      if (item.startPos < item.seq.numPromptTokens) numPrefillTokens += item.numTokens;
    }
    const step: StepReport = {
      numSequences: batch.items.length,
      numPrefillTokens,
      numDecodeTokens: batch.numTokens - numPrefillTokens,
      seconds: (performance.now() - startedAt) / 1000,
    };
    for (const listener of this.stepListeners) listener(step);
  }
}
