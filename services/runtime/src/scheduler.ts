// Continuous batching with chunked prefill. Each step gives every running sequence (admission
// order) min(pending tokens, chunk limit, budget left) tokens, then admits waiting sequences
// while the token budget, the running limit and the page pool allow. Page reservation (admission)
// is separate from computation (numComputedTokens), so a sequence's pages may also be filled by
// someone else (a remote prefill).
// This file is the core (queues, step building, preemption, admission order) and the public
// face; each other concern is one file:
//   sequence-pages.ts      the pages sequences hold: reservation, prefix-cache inserts, release
//   shared-prefix.ts       in-batch prefix sharing: who waits for whose pages
//   scheduled-batch.ts     a step's items and the executor's inputs built from them
//   output-processor.ts    sampled tokens, stop conditions, chunks
//   disaggregation.ts      remote prefill and prefill-only hooks; held and draining sequences
//   request-validation.ts  options and requests that can ever run
//   invariants.ts          refcount / radix-lock / free-list checks
// Contract (who frees what): a sequence holds one allocator reference on every page in its
// pageTable and one lock on its lockedNode; releasePages() drops both, after offering its computed
// full pages to the radix cache, on finish, abort and preemption alike. Until it finishes a
// sequence is either waiting (holding no pages) or running; a finished one may keep its pages
// for a while as held (prefill-only) or draining (a remote prefill still writing), see
// disaggregation.ts.

import { Disaggregation } from './disaggregation.ts';
import type { FinishReason, GenerateRequest, LoadReport, SchedulerOptions, TokenChunk } from './engine.ts';
import { DuplicateRequestError, InvalidGenerateRequestError } from './errors.ts';
import type { SampleOutput, SequenceOutput } from './executor-port.ts';
import { checkPageInvariants } from './invariants.ts';
import type { KvEventLog } from './kv-events.ts';
import { emitChunk, OutputProcessor } from './output-processor.ts';
import type { PageAllocator } from './page-allocator.ts';
import type { RadixCache } from './radix-cache.ts';
import { validateRequest, validateSchedulerOptions } from './request-validation.ts';
import { type ScheduledBatch, type ScheduledItem, scheduledItem, sequenceInput } from './scheduled-batch.ts';
import { type PrefillOnly, type RemotePrefill, type RequestState, Sequence } from './sequence.ts';
import { SequencePages } from './sequence-pages.ts';
import { awaitsSharedPrefix } from './shared-prefix.ts';

export type { ScheduledBatch, ScheduledItem } from './scheduled-batch.ts';

/** Optional per-request hooks for disaggregated prefill (see sequence.ts). */
export interface GenerateHooks {
  remotePrefill?: RemotePrefill | null;
  prefillOnly?: PrefillOnly | null;
  /** The request left the waiting queue (its prompt's pages are reserved); for traces. */
  onAdmitted?: ((numCachedTokens: number) => void) | null;
}

export interface SchedulerCounters {
  numSteps: number;
  numPreemptions: number;
  /** Cached pages evicted to make room. */
  numEvictedPages: number;
  numPromptTokens: number;
  numCachedPromptTokens: number;
}

export interface SchedulerModel {
  numPages: number;
  pageSize: number;
  eosTokenIds: readonly number[];
  vocabSize: number | null;
  maxModelLen: number | null;
}

export class Scheduler {
  readonly options: SchedulerOptions;
  readonly allocator: PageAllocator;
  /** null when the prefix cache is off. */
  readonly cache: RadixCache | null;
  readonly counters: SchedulerCounters = {
    numSteps: 0,
    numPreemptions: 0,
    numEvictedPages: 0,
    numPromptTokens: 0,
    numCachedPromptTokens: 0,
  };
  private readonly model: SchedulerModel;
  private readonly pages: SequencePages;
  private readonly output: OutputProcessor;
  private readonly disaggregation: Disaggregation;
  private readonly requests = new Map<string, RequestState>();
  private waiting: Sequence[] = [];
  private running: Sequence[] = [];
  /** Called when work appears outside schedule() (a remote prefill settled). */
  wake: () => void = () => {};
  private nextArrivalIndex = 0;

  constructor(options: SchedulerOptions, model: SchedulerModel, events: KvEventLog) {
    validateSchedulerOptions(options);
    this.options = options;
    this.model = model;
    this.pages = new SequencePages({
      numPages: model.numPages,
      pageSize: model.pageSize,
      enablePrefixCache: options.enablePrefixCache,
      decodeReserveTokens: options.decodeReserveTokens,
      events,
      evictions: this.counters,
    });
    this.allocator = this.pages.allocator;
    this.cache = this.pages.cache;
    this.output = new OutputProcessor(model.eosTokenIds, model.maxModelLen);
    this.disaggregation = new Disaggregation(this.pages, {
      appendToken: (seq, sample) => this.appendToken(seq, sample),
      wake: () => this.wake(),
    });
  }

  get hasWork(): boolean {
    return this.running.length > 0 || this.waiting.length > 0;
  }

  get numRequests(): number {
    return this.requests.size;
  }

  /** Queues a request's n choices. Throws (before queueing anything) when it can never run. */
  addRequest(
    request: GenerateRequest,
    emit: (chunk: TokenChunk) => void,
    onDone: (error: unknown) => void,
    hooks: GenerateHooks = {},
  ): RequestState {
    if (this.requests.has(request.requestId) || this.disaggregation.isHeld(request.requestId)) {
      throw new DuplicateRequestError(request.requestId); // live, or its prefill pages still held
    }
    validateRequest(request, {
      pageSize: this.pages.pageSize,
      numPages: this.allocator.numPages,
      vocabSize: this.model.vocabSize,
      maxModelLen: this.model.maxModelLen,
    });
    const prefillOnly = hooks.prefillOnly ?? null;
    const remotePrefill = hooks.remotePrefill ?? null;
    if (prefillOnly !== null && (request.n !== 1 || remotePrefill !== null)) {
      throw new InvalidGenerateRequestError('a prefill-only request has n = 1 and no remote prefill');
    }
    const state: RequestState = {
      request,
      namespace: request.cacheNamespace ?? '',
      sequences: [],
      emit,
      onDone,
      onAdmitted: hooks.onAdmitted ?? null,
      numFinished: 0,
    };
    for (let choice = 0; choice < request.n; choice++) {
      const parent = choice === 0 ? null : state.sequences[0]!;
      const seq = new Sequence(state, choice, parent, this.nextArrivalIndex++);
      state.sequences.push(seq);
      this.waiting.push(seq);
    }
    const first = state.sequences[0]!;
    first.prefillOnly = prefillOnly;
    if (remotePrefill !== null) {
      first.remote = { fill: (r, signal) => remotePrefill.fill(r, signal), status: 'idle', controller: null };
    }
    this.requests.set(request.requestId, state);
    return state;
  }

  /** Ends every unfinished choice with 'abort' and frees its pages. False when unknown. */
  abort(requestId: string): boolean {
    const state = this.requests.get(requestId);
    if (state === undefined) return false;
    for (const seq of state.sequences) {
      if (seq.status === 'finished') continue;
      emitChunk(seq, [], null, 'abort', null);
      this.finish(seq, 'abort');
    }
    return true;
  }

  /** Frees everything and reports `error` to every live request (executor failure, close). */
  failAll(error: unknown): void {
    for (const state of [...this.requests.values()]) {
      for (const seq of state.sequences) {
        if (seq.status === 'finished') continue;
        this.disaggregation.letGo(seq);
        seq.status = 'finished';
      }
      this.requests.delete(state.request.requestId);
      state.onDone(error);
    }
    this.waiting = [];
    this.running = [];
  }

  /** Frees a held prefill-only request's pages. False when none are held under this id. */
  releasePrefill(requestId: string): boolean {
    return this.disaggregation.releasePrefill(requestId);
  }

  /** The next step's batch, or null when nothing can run now. Valid until its postprocess(). */
  schedule(): ScheduledBatch | null {
    if (!this.hasWork) return null;
    const items: ScheduledItem[] = [];
    let budget = this.options.maxBatchTokens;
    let preempted = false;
    for (let i = 0; i < this.running.length && budget > 0; i++) {
      const seq = this.running[i]!;
      if (seq.remote?.status === 'pending') continue; // someone else is writing its prompt
      const numTokens = Math.min(seq.numPendingTokens, budget, this.options.maxPrefillChunkTokens);
      const numNewPages = this.pages.pagesFor(seq.numComputedTokens + numTokens) - seq.pageTable.length;
      if (numNewPages > 0) {
        while (!this.pages.ensureFreePages(numNewPages)) {
          preempted = true;
          const victim = this.pickVictim(i);
          if (victim !== null) {
            this.preempt(victim);
            continue;
          }
          if (this.running.length === 1 && !this.disaggregation.holdsPages) {
            // It alone fills the pool: it can never grow; end it as if at the length limit.
            emitChunk(seq, [], null, 'length', null);
            this.finish(seq, 'length');
          } else {
            this.preempt(seq); // wait for pages others hold (scheduled, filled remotely, held, draining)
          }
          break;
        }
        if (seq.status !== 'running') break;
        this.allocator.allocate(numNewPages, seq.pageTable);
      }
      items.push(scheduledItem(seq, numTokens));
      budget -= numTokens;
    }
    // No admissions in a step that had to preempt (the pool is under pressure), unless nothing
    // else runs: the step that ended or retracted the last sequence must not stall the queue.
    if (!preempted || items.length === 0) budget = this.admit(items, budget);
    if (items.length === 0) return null;
    this.counters.numSteps++;
    const pageSize = this.pages.pageSize;
    return {
      items,
      inputs: items.map((item) => sequenceInput(item, pageSize)),
      numTokens: this.options.maxBatchTokens - budget,
    };
  }

  /**
   * The forward pass's per-layer callback for the batch's prefill-only sequences that follow
   * layers (PrefillOnly.onLayerComputed), or null when none does.
   */
  layerListener(batch: ScheduledBatch): ((layer: number) => void) | null {
    return this.disaggregation.layerListener(batch);
  }

  /** Applies one forward pass's outputs (in batch order) to the sequences that are still running. */
  postprocess(batch: ScheduledBatch, outputs: readonly SequenceOutput[]): void {
    for (let i = 0; i < batch.items.length; i++) {
      const { seq, startPos, numTokens, sample } = batch.items[i]!;
      if (seq.status !== 'running') continue; // aborted while the forward pass ran
      seq.numComputedTokens += numTokens;
      if (seq.prefillOnly !== null) this.disaggregation.reportComputed(seq, startPos);
      if (sample) {
        const output = outputs[i]?.samples[0];
        if (output === undefined) throw new RangeError(`forward returned no sample for sequence ${i}`);
        this.appendToken(seq, output);
      }
      if (seq.status === 'running') this.pages.cacheComputedPages(seq);
    }
  }

  load(): LoadReport {
    let numQueuedPrefillTokens = 0;
    let numRunningTokens = 0;
    // Only what a waiting prompt would compute: its cached prefix costs nothing (a match without
    // locking; the router reads this once a second, so a prefix holder does not look busier).
    for (const seq of this.waiting)
      numQueuedPrefillTokens += seq.tokenIds.length - this.pages.cachedLength(seq);
    for (const seq of this.running) {
      numRunningTokens += seq.tokenIds.length;
      if (seq.isPrefilling) numQueuedPrefillTokens += seq.numPendingTokens;
    }
    return {
      numWaiting: this.waiting.length,
      numRunning: this.running.length,
      numFreePages: this.allocator.numFreePages,
      numTotalPages: this.allocator.numPages,
      numEvictablePages: this.cache?.numEvictablePages ?? 0,
      numQueuedPrefillTokens,
      numRunningTokens,
    };
  }

  /** Every page's refcount equals its holders (sequences + tree); throws a RangeError otherwise. */
  checkInvariants(): void {
    checkPageInvariants(this.pages, [...this.running, ...this.disaggregation.holders()], this.waiting);
  }

  private admit(items: ScheduledItem[], budget: number): number {
    let remaining = budget;
    while (remaining > 0 && this.running.length < this.options.maxRunningSequences) {
      const index = this.pickWaiting();
      if (index === -1) break;
      const seq = this.waiting[index]!;
      if (this.pages.pagesFor(seq.tokenIds.length) > this.allocator.numPages) {
        emitChunk(seq, [], null, 'length', null);
        this.finish(seq, 'length');
        continue;
      }
      if (!this.pages.reservePages(seq)) break; // head of line waits for pages
      seq.status = 'running';
      this.countFirstAdmission(seq);
      this.waiting.splice(index, 1);
      this.running.push(seq);
      if (seq.prefillOnly !== null && seq.numComputedTokens > 0) this.disaggregation.reportComputed(seq, 0);
      if (seq.remote?.status === 'idle' && seq.numOutputTokens === 0) {
        this.disaggregation.startRemotePrefill(seq);
        continue;
      }
      const numTokens = Math.min(seq.numPendingTokens, remaining, this.options.maxPrefillChunkTokens);
      items.push(scheduledItem(seq, numTokens));
      remaining -= numTokens;
    }
    return remaining;
  }

  /** numCachedTokens (a fork reports its parent's) and the prompt counters, at first admission only. */
  private countFirstAdmission(seq: Sequence): void {
    if (seq.numCachedTokens !== null) return;
    const parent = seq.forkParent;
    seq.numCachedTokens = parent === null ? seq.numComputedTokens : (parent.numCachedTokens ?? 0);
    if (parent === null) {
      this.counters.numPromptTokens += seq.numPromptTokens;
      this.counters.numCachedPromptTokens += seq.numCachedTokens;
      seq.state.onAdmitted?.(seq.numCachedTokens);
    }
  }

  /** Index in `waiting` of the next sequence to admit, or -1. */
  private pickWaiting(): number {
    let best = -1;
    let bestMatch = -1;
    for (let i = 0; i < this.waiting.length; i++) {
      const seq = this.waiting[i]!;
      if (!this.isReady(seq) || awaitsSharedPrefix(seq, this.running, this.pages)) continue;
      // Matching every waiting prompt costs O(queue); past 128 waiting, FCFS (as SGLang does).
      if (this.options.queuePolicy === 'fcfs' || this.cache === null || this.waiting.length > 128) return i;
      const match = this.cache.matchLength(seq.state.namespace, seq.tokenIds, seq.tokenIds.length - 1);
      if (match > bestMatch) {
        best = i;
        bestMatch = match;
      }
    }
    return best;
  }

  /** Choices > 0 wait until choice 0 has computed the prompt pages they will share. */
  private isReady(seq: Sequence): boolean {
    const parent = seq.forkParent;
    if (parent === null || parent.status === 'finished') return true;
    if (parent.status === 'waiting') return false;
    return parent.numComputedTokens >= this.pages.sharedPromptTokens(seq);
  }

  /** The newest running sequence after index `after` that may be preempted, or null. */
  private pickVictim(after: number): Sequence | null {
    for (let j = this.running.length - 1; j > after; j--) {
      const seq = this.running[j]!;
      if (seq.remote?.status !== 'pending') return seq;
    }
    return null;
  }

  /** Retract and recompute later: the newest running sequence gives its pages back. */
  private preempt(seq: Sequence): void {
    this.pages.releasePages(seq);
    this.running.splice(this.running.lastIndexOf(seq), 1);
    seq.status = 'waiting';
    seq.numPreemptions++;
    this.counters.numPreemptions++;
    this.waiting.unshift(seq);
  }

  /** A sampled (or remotely prefilled) token: emitted, and the choice ends if a stop matched. */
  private appendToken(seq: Sequence, sample: SampleOutput): void {
    const finishReason = this.output.appendToken(seq, sample);
    if (finishReason !== null) this.finish(seq, finishReason);
  }

  /** Ends a choice after its last chunk: out of its queue, pages freed (or held), request done. */
  private finish(seq: Sequence, reason: FinishReason): void {
    const queue = seq.status === 'running' ? this.running : this.waiting;
    const index = queue.indexOf(seq);
    if (index !== -1) queue.splice(index, 1);
    this.disaggregation.retire(seq, reason);
    seq.status = 'finished';
    seq.finishReason = reason;
    const state = seq.state;
    state.numFinished++;
    if (state.numFinished === state.sequences.length) {
      this.requests.delete(state.request.requestId);
      state.onDone(null);
    }
  }
}
