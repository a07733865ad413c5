// Continuous batching with chunked prefill. Each step gives every running sequence (admission
// order) min(pending tokens, chunk limit, budget left) tokens, then admits waiting sequences
// while the token budget, the running limit and the page pool allow. Page reservation (admission)
// is separate from computation (numComputedTokens), so a sequence's pages may also be filled by
// someone else (a remote prefill).
// Contract (who frees what): a sequence holds one allocator reference on every page in its
// pageTable and one lock on its lockedNode; releasePages() drops both, after offering its computed
// full pages to the radix cache, on finish, abort and preemption alike.

import type { FinishReason, GenerateRequest, LoadReport, SchedulerOptions, TokenChunk } from './engine.ts';
import {
  DuplicateRequestError,
  InvalidGenerateRequestError,
  InvalidSchedulerOptionsError,
  RequestTooLongError,
} from './errors.ts';
import type { SampleOutput, SequenceInput, SequenceOutput } from './executor-port.ts';
import type { KvEventLog } from './kv-events.ts';
import { PageAllocator } from './page-allocator.ts';
import { RadixCache } from './radix-cache.ts';
import {
  type ComputedPages,
  type FirstToken,
  type PrefillOnly,
  type RemotePrefill,
  type RequestState,
  Sequence,
} from './sequence.ts';

/** Optional per-request hooks for disaggregated prefill (see sequence.ts). */
export interface GenerateHooks {
  remotePrefill?: RemotePrefill | null;
  prefillOnly?: PrefillOnly | null;
}

export interface ScheduledItem {
  seq: Sequence;
  startPos: number; // first position computed this step
  numTokens: number; // tokens computed this step
  sample: boolean; // the chunk reaches the end of the sequence: sample the next token
}

export interface ScheduledBatch {
  items: ScheduledItem[];
  inputs: SequenceInput[]; // [items.length], what executor.forward receives
  numTokens: number;
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

// Shared, read-only inputs.
const noSampleIndices = new Int32Array(0);
const sampleFirst = Int32Array.of(0);

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
  private readonly pageSize: number;
  private readonly eosTokenIds: Set<number>;
  private readonly requests = new Map<string, RequestState>();
  private waiting: Sequence[] = [];
  private running: Sequence[] = [];
  /** Finished prefill-only sequences whose pages stay until releasePrefill(). */
  private readonly held = new Map<string, Sequence>();
  /** Ended sequences whose pages a remote prefill may still be writing; freed when it settles. */
  private readonly draining = new Set<Sequence>();
  /** Called when work appears outside schedule() (a remote prefill settled). */
  wake: () => void = () => {};
  private nextArrivalIndex = 0;

  constructor(options: SchedulerOptions, model: SchedulerModel, events: KvEventLog) {
    for (const key of ['maxBatchTokens', 'maxRunningSequences', 'maxPrefillChunkTokens'] as const) {
      if (!Number.isInteger(options[key]) || options[key] < 1) {
        throw new InvalidSchedulerOptionsError(
          `scheduler option ${key} must be a positive integer, got ${options[key]}`,
        );
      }
    }
    if (!Number.isInteger(options.decodeReserveTokens) || options.decodeReserveTokens < 0) {
      throw new InvalidSchedulerOptionsError(
        `decodeReserveTokens must be a non-negative integer, got ${options.decodeReserveTokens}`,
      );
    }
    this.options = options;
    this.model = model;
    this.pageSize = model.pageSize;
    this.eosTokenIds = new Set(model.eosTokenIds);
    this.allocator = new PageAllocator(model.numPages);
    this.cache = options.enablePrefixCache
      ? new RadixCache({ pageSize: model.pageSize, allocator: this.allocator, events })
      : null;
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
    this.validate(request);
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
      this.emitChunk(seq, [], null, 'abort', null);
      this.finish(seq, 'abort');
    }
    return true;
  }

  /** Frees everything and reports `error` to every live request (executor failure, close). */
  failAll(error: unknown): void {
    for (const state of [...this.requests.values()]) {
      for (const seq of state.sequences) {
        if (seq.status === 'finished') continue;
        this.letGo(seq);
        seq.status = 'finished';
      }
      this.requests.delete(state.request.requestId);
      state.onDone(error);
    }
    this.waiting = [];
    this.running = [];
  }

  schedule(): ScheduledBatch | null {
    if (!this.hasWork) return null;
    const items: ScheduledItem[] = [];
    let budget = this.options.maxBatchTokens;
    let preempted = false;
    for (let i = 0; i < this.running.length && budget > 0; i++) {
      const seq = this.running[i]!;
      if (seq.remote?.status === 'pending') continue; // someone else is writing its prompt
      const numTokens = Math.min(seq.numPendingTokens, budget, this.options.maxPrefillChunkTokens);
      const numNewPages = this.pagesFor(seq.numComputedTokens + numTokens) - seq.pageTable.length;
      if (numNewPages > 0) {
        while (!this.ensureFreePages(numNewPages)) {
          preempted = true;
          const victim = this.pickVictim(i);
          if (victim !== null) {
            this.preempt(victim);
            continue;
          }
          if (this.running.length === 1 && this.held.size === 0 && this.draining.size === 0) {
            // It alone fills the pool: it can never grow; end it as if at the length limit.
            this.emitChunk(seq, [], null, 'length', null);
            this.finish(seq, 'length');
          } else {
            this.preempt(seq); // wait for pages others hold (scheduled, filled remotely, held, draining)
          }
          break;
        }
        if (seq.status !== 'running') break;
        this.allocator.allocate(numNewPages, seq.pageTable);
      }
      items.push(this.item(seq, numTokens));
      budget -= numTokens;
    }
    // No admissions in a step that had to preempt (the pool is under pressure), unless nothing
    // else runs: the step that ended or retracted the last sequence must not stall the queue.
    if (!preempted || items.length === 0) budget = this.admit(items, budget);
    if (items.length === 0) return null;
    this.counters.numSteps++;
    return {
      items,
      inputs: items.map((item) => this.input(item)),
      numTokens: this.options.maxBatchTokens - budget,
    };
  }

  /**
   * The forward pass's per-layer callback for the batch's prefill-only sequences that follow
   * layers (PrefillOnly.onLayerComputed), or null when none does.
   */
  layerListener(batch: ScheduledBatch): ((layer: number) => void) | null {
    const listeners: { seq: Sequence; pages: ComputedPages }[] = [];
    for (const { seq, startPos, numTokens } of batch.items) {
      if (seq.prefillOnly?.onLayerComputed === undefined) continue;
      const endPos = startPos + numTokens;
      listeners.push({
        seq,
        pages: { pageTable: seq.pageTable.slice(0, this.pagesFor(endPos)), startPos, endPos },
      });
    }
    if (listeners.length === 0) return null;
    return (layer) => {
      for (const { seq, pages } of listeners) {
        // Aborted while the pass runs: its pages are about to be released, nothing may read them.
        if (seq.status === 'running') seq.prefillOnly?.onLayerComputed?.(pages, layer);
      }
    };
  }

  /** Applies one forward pass's outputs (in batch order) to the sequences that are still running. */
  postprocess(batch: ScheduledBatch, outputs: readonly SequenceOutput[]): void {
    for (let i = 0; i < batch.items.length; i++) {
      const { seq, startPos, numTokens, sample } = batch.items[i]!;
      if (seq.status !== 'running') continue; // aborted while the forward pass ran
      seq.numComputedTokens += numTokens;
      if (seq.prefillOnly !== null) this.reportComputed(seq, startPos);
      if (sample) {
        const output = outputs[i]?.samples[0];
        if (output === undefined) throw new RangeError(`forward returned no sample for sequence ${i}`);
        this.appendToken(seq, output);
      }
      if (seq.status === 'running') this.cacheComputedPages(seq);
    }
  }

  load(): LoadReport {
    let numQueuedPrefillTokens = 0;
    let numRunningTokens = 0;
    // Only what a waiting prompt would compute: its cached prefix costs nothing (a match without
    // locking; the router reads this once a second, so a prefix holder does not look busier).
    for (const seq of this.waiting) numQueuedPrefillTokens += seq.tokenIds.length - this.cachedLength(seq);
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
    const expected = new Int32Array(this.allocator.numPages);
    const holders = [...this.running, ...this.held.values(), ...this.draining];
    for (const seq of holders) for (const page of seq.pageTable) expected[page]!++;
    for (const seq of this.waiting)
      if (seq.pageTable.length > 0) throw new RangeError('waiting sequence holds pages');
    if (this.cache !== null) for (const page of this.cache.cachedPages()) expected[page]!++;
    let numHeld = 0;
    for (let page = 0; page < expected.length; page++) {
      if (this.allocator.refCount(page) !== expected[page]) {
        throw new RangeError(
          `page ${page}: refcount ${this.allocator.refCount(page)}, holders ${expected[page]}`,
        );
      }
      if (expected[page]! > 0) numHeld++;
    }
    if (numHeld + this.allocator.numFreePages !== this.allocator.numPages) {
      throw new RangeError('free list mismatch');
    }
    if (this.cache === null) return;
    this.cache.checkTree();
    this.cache.checkLocks(holders.flatMap((seq) => (seq.lockedNode === null ? [] : [seq.lockedNode])));
    for (const seq of holders) {
      if (seq.lockedNode === null) continue;
      const path = this.cache.pathTokens(seq.lockedNode);
      const prefix = seq.tokenIds.slice(0, seq.numInsertedPages * this.pageSize);
      if (path.length !== prefix.length || path.some((token, i) => token !== prefix[i])) {
        throw new RangeError('a sequence locks a radix path that is not its prefix');
      }
      const pages = this.cache.pathPages(seq.lockedNode);
      if (pages.some((page, i) => page !== seq.pageTable[i])) {
        throw new RangeError('a sequence keeps its own copy of a cached page');
      }
    }
  }

  private validate(request: GenerateRequest): void {
    const { promptTokenIds, n, maxTokens, minTokens } = request;
    if (this.requests.has(request.requestId) || this.held.has(request.requestId)) {
      throw new DuplicateRequestError(request.requestId); // live, or its prefill pages still held
    }
    if (promptTokenIds.length === 0)
      throw new InvalidGenerateRequestError('the prompt is empty', 'prompt_token_ids');
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidGenerateRequestError(`n must be a positive integer, got ${n}`, 'n');
    if (!Number.isInteger(maxTokens) || maxTokens < 1) {
      throw new InvalidGenerateRequestError(
        `maxTokens must be a positive integer, got ${maxTokens}`,
        'max_tokens',
      );
    }
    if (!Number.isInteger(minTokens) || minTokens < 0) {
      throw new InvalidGenerateRequestError(
        `minTokens must be a non-negative integer, got ${minTokens}`,
        'min_tokens',
      );
    }
    const vocabSize = this.model.vocabSize;
    for (const token of promptTokenIds) {
      if (!Number.isInteger(token) || token < 0 || (vocabSize !== null && token >= vocabSize)) {
        throw new InvalidGenerateRequestError(
          `prompt token id ${token} is outside the vocabulary`,
          'prompt_token_ids',
        );
      }
    }
    const maxModelLen = this.model.maxModelLen;
    if (maxModelLen !== null && promptTokenIds.length >= maxModelLen) {
      throw new RequestTooLongError(
        `a ${promptTokenIds.length}-token prompt leaves no room (max ${maxModelLen})`,
      );
    }
    if (this.pagesFor(promptTokenIds.length + 1) > this.allocator.numPages) {
      throw new RequestTooLongError(
        `a ${promptTokenIds.length}-token prompt needs more than the ${this.allocator.numPages}-page KV pool`,
      );
    }
  }

  private pagesFor(numTokens: number): number {
    return Math.ceil(numTokens / this.pageSize);
  }

  private item(seq: Sequence, numTokens: number): ScheduledItem {
    const startPos = seq.numComputedTokens;
    return { seq, startPos, numTokens, sample: startPos + numTokens === seq.tokenIds.length };
  }

  private input(item: ScheduledItem): SequenceInput {
    const { seq, startPos, numTokens } = item;
    const tokenIds = new Int32Array(numTokens);
    for (let i = 0; i < numTokens; i++) tokenIds[i] = seq.tokenIds[startPos + i]!;
    const numPages = this.pagesFor(startPos + numTokens);
    if (seq.pageTableBuffer.length < numPages) {
      const grown = new Int32Array(Math.max(numPages, 2 * seq.pageTableBuffer.length));
      grown.set(seq.pageTableBuffer.subarray(0, seq.numSyncedPages));
      seq.pageTableBuffer = grown;
    }
    // Page tables only grow while a sequence runs (release resets numSyncedPages).
    for (let i = seq.numSyncedPages; i < numPages; i++) seq.pageTableBuffer[i] = seq.pageTable[i]!;
    if (numPages > seq.numSyncedPages) seq.numSyncedPages = numPages;
    const pageTable = seq.pageTableBuffer.subarray(0, numPages);
    const s = seq.sampling;
    const penalized = s.repetitionPenalty !== 1 || s.frequencyPenalty !== 0 || s.presencePenalty !== 0;
    return {
      tokenIds,
      startPos,
      pageTable,
      sampleIndices: item.sample
        ? numTokens === 1
          ? sampleFirst
          : Int32Array.of(numTokens - 1)
        : noSampleIndices,
      sampling: s,
      promptTokenIds: penalized ? seq.promptTokenArray() : null,
      outputTokenIds: penalized ? seq.outputTokenArray() : null,
      targetIds: null,
      returnLogits: false,
      returnProbs: false,
    };
  }

  /** Frees pages (evicting cached ones if needed) until numPages are free. */
  private ensureFreePages(numPages: number): boolean {
    const numMissing = numPages - this.allocator.numFreePages;
    if (numMissing > 0 && this.cache !== null) this.counters.numEvictedPages += this.cache.evict(numMissing);
    return this.allocator.canAllocate(numPages);
  }

  private admit(items: ScheduledItem[], budget: number): number {
    let remaining = budget;
    while (remaining > 0 && this.running.length < this.options.maxRunningSequences) {
      const index = this.pickWaiting();
      if (index === -1) break;
      const seq = this.waiting[index]!;
      if (this.pagesFor(seq.tokenIds.length) > this.allocator.numPages) {
        this.emitChunk(seq, [], null, 'length', null);
        this.finish(seq, 'length');
        continue;
      }
      if (!this.reservePages(seq)) break; // head of line waits for pages
      this.waiting.splice(index, 1);
      this.running.push(seq);
      if (seq.prefillOnly !== null && seq.numComputedTokens > 0) this.reportComputed(seq, 0);
      if (seq.remote?.status === 'idle' && seq.numOutputTokens === 0) {
        this.startRemotePrefill(seq);
        continue;
      }
      const numTokens = Math.min(seq.numPendingTokens, remaining, this.options.maxPrefillChunkTokens);
      items.push(this.item(seq, numTokens));
      remaining -= numTokens;
    }
    return remaining;
  }

  /** Index in `waiting` of the next sequence to admit, or -1. */
  private pickWaiting(): number {
    let best = -1;
    let bestMatch = -1;
    for (let i = 0; i < this.waiting.length; i++) {
      const seq = this.waiting[i]!;
      if (!this.isReady(seq) || this.awaitsSharedPrefix(seq)) continue;
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
    return parent.numComputedTokens >= this.sharedPromptTokens(seq);
  }

  /** Tokens of the sequence's page-aligned prefix already in the radix cache (0 without one). */
  private cachedLength(seq: Sequence): number {
    if (this.cache === null) return 0;
    return this.cache.matchLength(seq.state.namespace, seq.tokenIds, seq.tokenIds.length - 1);
  }

  /**
   * In-batch prefix sharing: true while a running sequence is still computing full pages of this
   * sequence's prefix that the cache lacks. The sequence stays queued (without blocking others)
   * until those pages are inserted, then matches them instead of computing them again. Re-checked
   * every step against the running list, so an aborted or preempted holder holds no one.
   */
  private awaitsSharedPrefix(seq: Sequence): boolean {
    if (this.cache === null) return false;
    const size = this.pageSize;
    const maxPages = Math.floor((seq.tokenIds.length - 1) / size);
    if (maxPages === 0) return false;
    let numCachedTokens = -1; // computed once, only when some running sequence shares a page
    for (const other of this.running) {
      if (other.state.namespace !== seq.state.namespace || other.remote?.status === 'pending') continue;
      const numComputedPages = Math.floor(other.numComputedTokens / size);
      if (numComputedPages >= maxPages) continue; // it already inserted everything we could share
      const numCommonPages = this.commonPages(seq, other, maxPages);
      if (numCommonPages <= numComputedPages) continue; // nothing it has yet to compute is ours
      if (numCachedTokens === -1) numCachedTokens = this.cachedLength(seq);
      if (numCachedTokens < numCommonPages * size) return true;
    }
    return false;
  }

  /** Full pages (up to maxPages) on which two sequences' tokens agree. */
  private commonPages(seq: Sequence, other: Sequence, maxPages: number): number {
    const limit = Math.min(maxPages * this.pageSize, other.tokenIds.length);
    const a = seq.tokenIds;
    const b = other.tokenIds;
    let i = 0;
    while (i < limit && a[i] === b[i]) i++;
    return Math.floor(i / this.pageSize);
  }

  /** Full prompt pages a fork shares with its parent (the last prompt token is always its own). */
  private sharedPromptTokens(seq: Sequence): number {
    return Math.floor((seq.numPromptTokens - 1) / this.pageSize) * this.pageSize;
  }

  /** Admission: reuse cached (or the parent's) pages, allocate the rest of the sequence's pages. */
  private reservePages(seq: Sequence): boolean {
    const numTokens = seq.tokenIds.length;
    let sharedPages: number[] = [];
    let lockedNode = null;
    if (this.cache !== null) {
      const match = this.cache.match(seq.state.namespace, seq.tokenIds, numTokens - 1);
      if (match.pages.length > 0) {
        lockedNode = match.node;
        this.cache.lock(lockedNode);
      }
      sharedPages = match.pages;
    } else if (seq.forkParent !== null && seq.forkParent.status === 'running') {
      sharedPages = seq.forkParent.pageTable.slice(0, this.sharedPromptTokens(seq) / this.pageSize);
    }
    const numSeqPages = this.pagesFor(numTokens);
    const numNewPages = numSeqPages - sharedPages.length;
    const numLeft = seq.state.request.maxTokens - seq.numOutputTokens;
    const numReserveTokens = Math.min(this.options.decodeReserveTokens, numLeft);
    const numReservePages = Math.min(
      this.pagesFor(numTokens + numReserveTokens) - numSeqPages,
      this.allocator.numPages - numSeqPages,
    );
    const numAvailable = this.allocator.numFreePages + (this.cache?.numEvictablePages ?? 0);
    if (numAvailable < numNewPages + numReservePages || !this.ensureFreePages(numNewPages)) {
      if (lockedNode !== null) this.cache!.unlock(lockedNode);
      return false;
    }
    for (const page of sharedPages) this.allocator.retain(page);
    seq.lockedNode = lockedNode;
    seq.numInsertedPages = lockedNode === null ? 0 : sharedPages.length;
    seq.numComputedTokens = sharedPages.length * this.pageSize;
    seq.pageTable = sharedPages;
    this.allocator.allocate(numNewPages, seq.pageTable);
    seq.status = 'running';
    if (seq.numCachedTokens === null) {
      const parent = seq.forkParent;
      seq.numCachedTokens = parent === null ? seq.numComputedTokens : (parent.numCachedTokens ?? 0);
      if (parent === null) {
        this.counters.numPromptTokens += seq.numPromptTokens;
        this.counters.numCachedPromptTokens += seq.numCachedTokens;
      }
    }
    return true;
  }

  /** Retract and recompute later: the newest running sequence gives its pages back. */
  private preempt(seq: Sequence): void {
    this.releasePages(seq);
    this.running.splice(this.running.lastIndexOf(seq), 1);
    seq.status = 'waiting';
    seq.numPreemptions++;
    this.counters.numPreemptions++;
    this.waiting.unshift(seq);
  }

  /** Offers the sequence's computed full pages to the prefix cache and keeps their path locked. */
  private cacheComputedPages(seq: Sequence): void {
    const cache = this.cache;
    if (cache === null) return;
    const numFullPages = Math.floor(seq.numComputedTokens / this.pageSize);
    if (numFullPages <= seq.numInsertedPages) return;
    const from = seq.lockedNode === null ? null : { node: seq.lockedNode, numPages: seq.numInsertedPages };
    const node = cache.insert(
      seq.state.namespace,
      seq.tokenIds,
      seq.pageTable,
      numFullPages,
      from,
      (index, cached) => {
        // Same tokens computed twice (concurrent identical prefixes): use the cached page, free ours.
        this.allocator.retain(cached);
        this.allocator.release(seq.pageTable[index]!);
        seq.pageTable[index] = cached;
        seq.numSyncedPages = Math.min(seq.numSyncedPages, index);
      },
    );
    if (node === seq.lockedNode) {
      seq.numInsertedPages = numFullPages;
      return;
    }
    cache.lock(node);
    if (seq.lockedNode !== null) cache.unlock(seq.lockedNode);
    seq.lockedNode = node;
    seq.numInsertedPages = numFullPages;
  }

  private releasePages(seq: Sequence): void {
    this.cacheComputedPages(seq);
    for (const page of seq.pageTable) this.allocator.release(page);
    if (seq.lockedNode !== null) this.cache!.unlock(seq.lockedNode);
    seq.pageTable = [];
    seq.numSyncedPages = 0;
    seq.lockedNode = null;
    seq.numComputedTokens = 0;
    seq.numInsertedPages = 0;
  }

  private appendToken(seq: Sequence, sample: SampleOutput): void {
    const token = sample.tokenId;
    seq.tokenIds.push(token);
    const request = seq.state.request;
    const numOutput = seq.numOutputTokens;
    let finishReason: FinishReason | null = null;
    let matchedStopTokenId: number | null = null;
    if (numOutput >= request.minTokens) {
      if (!request.ignoreEos && this.eosTokenIds.has(token)) {
        finishReason = 'stop';
      } else if (request.stopTokenIds.includes(token)) {
        finishReason = 'stop';
        matchedStopTokenId = token;
      }
    }
    const maxModelLen = this.model.maxModelLen;
    if (
      finishReason === null &&
      (numOutput >= request.maxTokens || (maxModelLen !== null && seq.tokenIds.length >= maxModelLen))
    ) {
      finishReason = 'length';
    }
    this.emitChunk(seq, [token], sample, finishReason, matchedStopTokenId);
    if (finishReason !== null) this.finish(seq, finishReason);
  }

  private emitChunk(
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

  private finish(seq: Sequence, reason: FinishReason): void {
    const queue = seq.status === 'running' ? this.running : this.waiting;
    const index = queue.indexOf(seq);
    if (index !== -1) queue.splice(index, 1);
    if (seq.prefillOnly !== null && reason !== 'abort' && seq.status === 'running') {
      this.cacheComputedPages(seq);
      this.held.set(seq.state.request.requestId, seq);
    } else {
      this.letGo(seq);
    }
    seq.status = 'finished';
    seq.finishReason = reason;
    const state = seq.state;
    state.numFinished++;
    if (state.numFinished === state.sequences.length) {
      this.requests.delete(state.request.requestId);
      state.onDone(null);
    }
  }

  /** Frees a held prefill-only request's pages. False when none are held under this id. */
  releasePrefill(requestId: string): boolean {
    const seq = this.held.get(requestId);
    if (seq === undefined) return false;
    this.held.delete(requestId);
    this.releasePages(seq);
    return true;
  }

  /** Releases pages now, or once a remote prefill writing into them settles. */
  private letGo(seq: Sequence): void {
    if (seq.remote?.status === 'pending') {
      seq.remote.controller?.abort();
      this.draining.add(seq);
    } else {
      this.releasePages(seq);
    }
  }

  /** The newest running sequence after index `after` that may be preempted, or null. */
  private pickVictim(after: number): Sequence | null {
    for (let j = this.running.length - 1; j > after; j--) {
      const seq = this.running[j]!;
      if (seq.remote?.status !== 'pending') return seq;
    }
    return null;
  }

  private reportComputed(seq: Sequence, startPos: number): void {
    const endPos = seq.numComputedTokens;
    const pageTable = seq.pageTable.slice(0, this.pagesFor(endPos));
    seq.prefillOnly!.onComputed({ pageTable, startPos, endPos });
  }

  /** Hook (a): hands the reserved pages to the remote prefill and waits for its first token. */
  private startRemotePrefill(seq: Sequence): void {
    const remote = seq.remote!;
    const controller = new AbortController();
    remote.status = 'pending';
    remote.controller = controller;
    const reservation = {
      requestId: seq.state.request.requestId,
      pageTable: seq.pageTable.slice(),
      numCachedTokens: seq.numComputedTokens,
      numPromptTokens: seq.numPromptTokens,
    };
    let filled: Promise<FirstToken>;
    try {
      filled = remote.fill(reservation, controller.signal);
    } catch (error) {
      filled = Promise.reject(error);
    }
    filled.then(
      (first) => this.remotePrefillSettled(seq, first),
      () => this.remotePrefillSettled(seq, null),
    );
  }

  private remotePrefillSettled(seq: Sequence, first: FirstToken | null): void {
    const remote = seq.remote!;
    remote.status = first === null ? 'failed' : 'done'; // failed: prefill locally from the cached prefix
    remote.controller = null;
    if (this.draining.delete(seq)) {
      this.releasePages(seq);
    } else if (seq.status === 'running' && first !== null) {
      seq.numComputedTokens = seq.tokenIds.length;
      this.appendToken(seq, { index: 0, ...first, logits: null, probs: null });
      if (seq.status === 'running') this.cacheComputedPages(seq);
    }
    this.wake();
  }
}
