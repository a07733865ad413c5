// Routes one prompt and runs it on a worker: builds the candidates' views, asks the policy,
// records the decision and streams the worker's Generate call (attempt.ts keeps the call's side
// effects: in-flight counts, optimistic index entries, breaker ticket). For a decode worker it
// also chooses the prefill worker, or a local prefill (policy/prefill-policy.ts), and names that
// choice in the Generate call.
//
// Until the first token, the request is raced: an attempt that stays silent past its hedge delay
// gets a twin on another worker (another prefill worker for a decode worker), the first to answer
// wins and the other is cancelled; an attempt past its first-byte deadline fails; a failed attempt
// is retried on another worker after a backoff with full jitter. After the first token, a worker
// that dies mid-stream is replaced (failover.ts): each unfinished choice continues elsewhere from
// the tokens already streamed. Workers silent past `suspectAfterMs` (a stopped process stops its
// load reports) are picked only when nothing else is left.
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError, type Logger, TandemError } from '@tandem/common';
import {
  create,
  FinishReason,
  type GenerateRequest,
  GenerateRequestSchema,
  type GenerateResponse,
  GenerateResponseSchema,
  type MessageInitShape,
  PrefillEndpointSchema,
  PrefillMode,
  toBinary,
} from '@tandem/proto';
import {
  FirstByteTimeoutError,
  NoWorkersError,
  RequestNotEncodableError,
  WorkerFailedError,
} from '../errors.ts';
import type { BlockKeys } from '../kv/block-keys.ts';
import type { KvIndex } from '../kv/kv-index.ts';
import { constraintToWire } from '../openai/constraint-wire.ts';
import type { GenerationOptions } from '../openai/request.ts';
import {
  choosePrefill,
  defaultPrefillPolicyParams,
  type PrefillDecision,
  type PrefillPolicyParams,
  type PrefillWorkerView,
} from '../policy/prefill-policy.ts';
import type { Decision, Policy, RoutingRequest, WorkerView } from '../policy/types.ts';
import { startRoutingSpan } from '../request-trace.ts';
import { type FirstOutcome, failureKindOf, WorkerAttempt } from './attempt.ts';
import type { AdmissionRecord, DecisionLog, DecisionReason } from './decision-log.ts';
import { ChoiceProgress, mergeStreams, renameChoice } from './failover.ts';
import type { InflightCounts } from './inflight.ts';
import type { WorkerRecord, WorkerRegistry } from './worker-registry.ts';

export interface DispatchRequest {
  /** The client-visible request id (x-request-id): routing records are kept under it. */
  requestId: string;
  /** Unique per worker call (a client may reuse its x-request-id; a batch has several prompts). */
  workerRequestId: string;
  promptTokenIds: readonly number[];
  blockKeys: BlockKeys;
  routingKey: string | null;
  /** Its admission (class, time queued), for the routing record. */
  admission?: AdmissionRecord;
  options: GenerationOptions;
  maxTokens: number;
  /** Aborted when the client goes away or the deadline passes. */
  signal: AbortSignal;
}

export interface DispatchObserver {
  /** A prompt went to a worker (the routed feed tells the other replicas). */
  onRouted?(workerId: string, keys: BlockKeys): void;
  onDecision?(decision: Decision, attempt: number, decideMs: number): void;
  onPrefillDecision?(decision: PrefillDecision): void;
  onFirstResponse?(workerId: string, ttftMs: number, numCachedTokens: number): void;
  onRetry?(workerId: string, error: unknown): void;
  /** A silent attempt got a twin on another worker. */
  onHedge?(workerId: string): void;
  /** A worker failed mid-stream; its unfinished choices continue elsewhere. */
  onFailover?(workerId: string, error: unknown): void;
}

/** How requests survive slow and failing workers (router-options.ts has the flags). */
export interface ResilienceParams {
  /** Retries wait a random time in [0, min(max, base x 2^(failures - 1))) ms (full jitter). */
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  /**
   * An attempt without a first token after this long (plus 4x its predicted prefill time) fails
   * and is retried elsewhere.
   */
  firstByteTimeoutMs: number;
  /**
   * An attempt without a first token after this long (plus 2x its predicted prefill time) gets a
   * twin on another worker; 0: no hedging.
   */
  hedgeAfterMs: number;
  /** A worker not heard from (announcement, load report) for this long is picked last. */
  suspectAfterMs: number;
  /** Mid-stream failovers per prompt (0: a worker that dies mid-stream fails the request). */
  maxFailovers: number;
}

export const defaultResilienceParams: ResilienceParams = {
  retryBackoffMs: 50,
  retryBackoffMaxMs: 1000,
  firstByteTimeoutMs: 60_000,
  hedgeAfterMs: 2000,
  suspectAfterMs: 3500,
  maxFailovers: 3,
};

export interface DispatcherParams {
  policy: Policy;
  index: KvIndex;
  registry: WorkerRegistry;
  inflight: InflightCounts;
  decisions: DecisionLog;
  random: () => number;
  logger: Logger;
  /** Tries per request before its first token, counting the first (each on a different worker). */
  maxAttempts: number;
  /** How a decode worker's prompt is prefilled (default: defaultPrefillPolicyParams). */
  prefill?: PrefillPolicyParams;
  /** Default: defaultResilienceParams. */
  resilience?: ResilienceParams;
  observer?: DispatchObserver;
}

/** A depths buffer with room for every index slot (matchDepths writes each candidate's entry). */
function fitSlots(depths: Uint32Array<ArrayBuffer>, slotCapacity: number): Uint32Array<ArrayBuffer> {
  return depths.length >= slotCapacity ? depths : new Uint32Array(2 * slotCapacity);
}

const emptyView: WorkerView = {
  workerId: '',
  slot: -1,
  numInflight: 0,
  load: null,
  numQueuedPrefillTokens: 0,
  numDecoding: 0,
  prefillTokensPerMs: 1,
  stepCost: null,
  pageSize: 1,
  lastPickedSeq: 0,
};

/** What a request has tried so far (attempts avoid workers already tried while others are left). */
interface Tried {
  workers: Set<string>;
  prefillWorkers: Set<string>;
  numAttempts: number;
}

export class Dispatcher {
  readonly #params: DispatcherParams;
  readonly #resilience: ResilienceParams;
  #pickSeq = 0;
  #depths = new Uint32Array(32);
  // decide's scratch, reused by every decision (a policy reads views only while it decides).
  #slots: number[] = []; // the candidates' index slots
  #candidates: WorkerView[] = [];
  #views: WorkerView[] = []; // by position in #viewsOf
  #viewsOf: readonly WorkerRecord[] | null = null;
  #prefillDepths = new Uint32Array(32);

  constructor(params: DispatcherParams) {
    this.#params = params;
    this.#resilience = params.resilience ?? defaultResilienceParams;
  }

  get policyName(): string {
    return this.#params.policy.name;
  }

  /** The decision for a request among the usable workers not in `exclude` (no side effects). */
  decide(request: RoutingRequest, exclude: ReadonlySet<string>, nowMs: number): Decision {
    const { registry, index, policy } = this.#params;
    const workers = registry.all();
    if (workers !== this.#viewsOf) {
      // Membership changed: one view object per worker, refreshed in place by every decision.
      this.#viewsOf = workers;
      this.#views = workers.map((worker) => ({ ...emptyView, workerId: worker.workerId }));
    }
    // One pass over the registry's list (sorted by id, so the candidates are too): silent
    // workers are kept aside and used only when no other is usable.
    const candidates = this.#candidates;
    const slots = this.#slots;
    candidates.length = 0;
    slots.length = 0;
    let numSuspects = 0;
    for (let i = 0; i < workers.length; i++) {
      const worker = workers[i]!;
      if ((exclude.size > 0 && exclude.has(worker.workerId)) || !worker.breaker.allows(nowMs)) continue;
      if (this.#isSuspect(worker, nowMs)) numSuspects++;
      else candidates.push(this.#refreshView(this.#views[i]!, worker, slots));
    }
    if (candidates.length === 0 && numSuspects > 0) {
      for (let i = 0; i < workers.length; i++) {
        const worker = workers[i]!;
        if ((exclude.size > 0 && exclude.has(worker.workerId)) || !worker.breaker.allows(nowMs)) continue;
        candidates.push(this.#refreshView(this.#views[i]!, worker, slots));
      }
    }
    let matchDepthBySlot: Uint32Array | null = null;
    if (policy.needsPrefix && candidates.length > 0) {
      this.#depths = fitSlots(this.#depths, index.slotCapacity);
      index.matchDepths(request.blockKeys, slots, this.#depths);
      matchDepthBySlot = this.#depths;
    }
    return policy.decide(request, candidates, { matchDepthBySlot, random: this.#params.random });
  }

  /** Fills the worker's view with its state now; its index slot goes to `slots`. */
  #refreshView(view: WorkerView, worker: WorkerRecord, slots: number[]): WorkerView {
    const { registry, index, inflight } = this.#params;
    // A worker keeps its index slot while it is registered (kv-event-sync frees it on 'left').
    const slot = view.slot === -1 ? index.slotOf(worker.workerId) : view.slot;
    slots.push(slot);
    let numQueuedPrefillTokens = worker.numOthersQueuedPrefillTokens;
    if (worker.pendingPrefills.size > 0)
      for (const prefill of worker.pendingPrefills.values()) numQueuedPrefillTokens += prefill.numTokens;
    const numInflight = inflight.count(worker.workerId);
    view.slot = slot;
    view.numInflight = numInflight;
    view.load = worker.load;
    view.numQueuedPrefillTokens = numQueuedPrefillTokens;
    view.numDecoding = Math.max(0, numInflight - worker.pendingPrefills.size);
    view.prefillTokensPerMs = registry.prefillRateFor(worker);
    view.stepCost = worker.load?.stepCost ?? null;
    view.pageSize = worker.pageSize;
    view.lastPickedSeq = worker.lastPickedSeq;
    return view;
  }

  /**
   * For a decode worker `decode`: the prefill worker that computes the prompt, or a local prefill,
   * or no decision when no prefill worker is known (no side effects). Prefill workers in
   * `exclude` (tried by this request) and silent ones are used only when no other is left.
   */
  decidePrefill(
    request: RoutingRequest,
    decode: WorkerRecord,
    exclude: ReadonlySet<string> = new Set(),
    nowMs = Date.now(),
  ): PrefillDecision {
    const { registry, index } = this.#params;
    const known = registry.prefillWorkers();
    if (known.length === 0) return { type: 'undecided', reason: 'no prefill worker known' };
    const fresh = known.filter((worker) => !exclude.has(worker.workerId) && !this.#isSuspect(worker, nowMs));
    const untried = known.filter((worker) => !exclude.has(worker.workerId));
    const prefillWorkers = fresh.length > 0 ? fresh : untried.length > 0 ? untried : known;
    const decodeSlot = index.slotOf(decode.workerId);
    const slots = [decodeSlot];
    const decodeHost = hostOf(decode.grpcAddress);
    const views: PrefillWorkerView[] = prefillWorkers.map((worker) => {
      const slot = index.slotOf(worker.workerId);
      slots.push(slot);
      let numQueuedPrefillTokens = worker.numOthersQueuedPrefillTokens;
      for (const prefill of worker.pendingPrefills.values()) numQueuedPrefillTokens += prefill.numTokens;
      return {
        workerId: worker.workerId,
        grpcAddress: worker.grpcAddress,
        slot,
        pageSize: worker.pageSize,
        numQueuedPrefillTokens,
        prefillTokensPerMs: registry.prefillRateFor(worker),
        lastPickedSeq: worker.lastPickedSeq,
        sameHostAsDecode: hostOf(worker.grpcAddress) === decodeHost,
      };
    });
    this.#prefillDepths = fitSlots(this.#prefillDepths, index.slotCapacity);
    index.matchDepths(request.blockKeys, slots, this.#prefillDepths);
    const decodeDepth = this.#prefillDepths[decodeSlot]!;
    const prefillRequest = {
      numPromptTokens: request.numPromptTokens,
      numCachedOnDecode: Math.min(decodeDepth * decode.pageSize, request.numPromptTokens),
      decodePageSize: decode.pageSize,
      decodeKvBytesPerPage: decode.kvBytesPerPage,
    };
    const decision = choosePrefill(
      prefillRequest,
      views,
      this.#prefillDepths,
      this.#params.prefill ?? defaultPrefillPolicyParams,
    );
    // Every prefill worker was tried by this request already: the decode worker prefills itself.
    if (decision.type === 'remote' && fresh.length === 0 && untried.length === 0) {
      return {
        type: 'local',
        reason: 'every prefill worker was tried by this request',
        threshold: decision.threshold,
        numUncachedOnDecode: decision.numUncachedOnDecode,
        candidates: decision.candidates,
      };
    }
    return decision;
  }

  /** Streams the worker's responses for one prompt (all choices). */
  async *generate(request: DispatchRequest): AsyncGenerator<GenerateResponse> {
    const budget = { numFailovers: 0 };
    yield* this.#generate(request, encodableWireRequest(request), budget);
  }

  async *#generate(
    request: DispatchRequest,
    wire: GenerateRequest,
    budget: { numFailovers: number },
    avoid: ReadonlySet<string> = new Set(),
  ): AsyncGenerator<GenerateResponse> {
    const progress = new ChoiceProgress(request.options.n);
    const tried: Tried = { workers: new Set(avoid), prefillWorkers: new Set(), numAttempts: 0 };
    const { attempt, response } = await this.#start(
      request,
      wire,
      tried,
      avoid.size > 0 ? 'failover' : 'first',
    );
    let failedWorker: WorkerRecord;
    let failure: unknown;
    try {
      yield progress.observe(response);
      for await (const next of attempt.rest()) yield progress.observe(next);
      if (progress.allFinished) return;
      failedWorker = attempt.worker;
      failure = new WorkerFailedError(`the worker's stream ended with unfinished choices`);
    } catch (error) {
      if (request.signal.aborted || failureKindOf(error) === 'request') throw error;
      failedWorker = attempt.worker;
      failure = error;
    }
    failedWorker.breaker.recordFailure(Date.now());
    if (budget.numFailovers >= this.#resilience.maxFailovers) throw failure;
    budget.numFailovers++;
    this.#params.observer?.onFailover?.(failedWorker.workerId, failure);
    this.#params.logger.warn('worker failed mid-stream; its choices continue on another worker', {
      requestId: request.requestId,
      workerId: failedWorker.workerId,
      error: failure,
    });
    const continuations = progress.unfinished().map(({ index, tokenIds }) => {
      const continuation: DispatchRequest = {
        ...request,
        workerRequestId: `${request.workerRequestId}-f${budget.numFailovers}c${index}`,
        promptTokenIds: [...request.promptTokenIds, ...tokenIds],
        maxTokens: request.maxTokens - tokenIds.length,
        options: {
          ...request.options,
          n: 1,
          minTokens: Math.max(0, request.options.minTokens - tokenIds.length),
          // A constrained choice resumes where its output was, not at the start of the grammar.
          constraintPrefixTokenIds: [...request.options.constraintPrefixTokenIds, ...tokenIds],
        },
      };
      return { index, continuation };
    });
    // The failed worker is avoided while another is left.
    const avoidFailed = new Set([...avoid, failedWorker.workerId]);
    const streams = continuations.map(({ index, continuation }) =>
      this.#continue(continuation, index, budget, avoidFailed),
    );
    yield* mergeStreams(streams);
  }

  /** One unfinished choice, continued on another worker, as choice `index` of the original. */
  async *#continue(
    continuation: DispatchRequest,
    index: number,
    budget: { numFailovers: number },
    avoid: ReadonlySet<string>,
  ): AsyncGenerator<GenerateResponse> {
    if (continuation.maxTokens <= 0) {
      // Its budget was spent but the worker died before saying so: it ended on length.
      yield create(GenerateResponseSchema, { choices: [{ index, finishReason: FinishReason.LENGTH }] });
      return;
    }
    const wire = encodableWireRequest(continuation);
    for await (const response of this.#generate(continuation, wire, budget, avoid))
      yield renameChoice(response, index);
  }

  /**
   * The first response of a request: attempts raced and retried (see the top of the file). The
   * winning attempt comes back with its first response; every other one is cancelled.
   */
  async #start(
    request: DispatchRequest,
    wire: GenerateRequest,
    tried: Tried,
    reason: DecisionReason,
  ): Promise<{ attempt: WorkerAttempt; response: GenerateResponse }> {
    const { maxAttempts, logger } = this.#params;
    const racing: WorkerAttempt[] = [];
    const timers = new Map<WorkerAttempt, NodeJS.Timeout>();
    let numFailures = 0;
    let lastError: unknown = null;
    let hedged = false;
    const stopAll = (): void => {
      for (const attempt of racing) void attempt.discard();
      racing.length = 0;
    };
    const launch = (why: DecisionReason): WorkerAttempt | null => {
      const attempt = this.#launch(request, wire, tried, why, racing);
      if (attempt === null) return null;
      racing.push(attempt);
      // The first-byte deadline: past it the attempt fails (and counts against its worker).
      const deadlineMs =
        this.#resilience.firstByteTimeoutMs + 4 * this.#expectedFirstTokenMs(attempt, request);
      const timer = setTimeout(
        () =>
          attempt.cancel(
            new FirstByteTimeoutError(
              `worker ${attempt.worker.workerId} sent no first token in ${deadlineMs} ms`,
            ),
          ),
        deadlineMs,
      );
      timer.unref();
      timers.set(attempt, timer);
      return attempt;
    };
    const aborted = abortPromise(request.signal);
    try {
      while (true) {
        if (request.signal.aborted) throw abortError(request.signal);
        if (racing.length === 0) {
          if (numFailures >= maxAttempts)
            throw lastError ?? new NoWorkersError('no worker could serve the request');
          if (numFailures > 0) await this.#backoff(numFailures, request.signal);
          if (launch(numFailures === 0 ? reason : 'retry') === null) {
            throw lastError ?? new NoWorkersError(this.#noWorkerMessage());
          }
        }
        const outcomes = racing.map((attempt) =>
          attempt.first().then((outcome) => ({ attempt, outcome }) as const),
        );
        const hedgeMs =
          hedged || this.#resilience.hedgeAfterMs <= 0 ? null : this.#hedgeDelayMs(racing[0]!, request);
        const waits: Promise<{ attempt: WorkerAttempt; outcome: FirstOutcome } | 'hedge' | 'aborted'>[] = [
          ...outcomes,
          aborted,
        ];
        // A plain timer, cleared once the race is over: aborting a timers/promises sleep instead
        // builds an AbortError (a DOMException with its stack) on every request.
        let hedgeTimer: NodeJS.Timeout | null = null;
        if (hedgeMs !== null) {
          const elapsedMs = Date.now() - racing[0]!.startedAtMs;
          waits.push(
            new Promise<'hedge'>((resolve) => {
              hedgeTimer = setTimeout(() => resolve('hedge'), Math.max(0, hedgeMs - elapsedMs));
            }),
          );
        }
        const settled = await Promise.race(waits);
        if (hedgeTimer !== null) clearTimeout(hedgeTimer);
        if (settled === 'aborted') {
          if (request.signal.aborted) throw abortError(request.signal);
          continue;
        }
        if (settled === 'hedge') {
          hedged = true;
          const twin = launch('hedge');
          if (twin !== null) this.#params.observer?.onHedge?.(twin.worker.workerId);
          continue;
        }
        const { attempt, outcome } = settled;
        racing.splice(racing.indexOf(attempt), 1);
        clearTimeout(timers.get(attempt));
        if (outcome.type === 'response') {
          // The winner; a twin still waiting is cancelled.
          stopAll();
          return { attempt, response: outcome.response };
        }
        const error =
          outcome.type === 'error'
            ? outcome.error
            : new WorkerFailedError('the stream ended before its first token');
        if (request.signal.aborted) throw abortError(request.signal);
        if (failureKindOf(error) === 'request') throw error;
        numFailures++;
        lastError = error;
        this.#params.observer?.onRetry?.(attempt.worker.workerId, error);
        logger.warn('worker failed before the first token; retrying elsewhere', {
          requestId: request.requestId,
          workerId: attempt.worker.workerId,
          attempt: tried.numAttempts,
          error,
        });
      }
    } finally {
      for (const timer of timers.values()) clearTimeout(timer);
      stopAll();
    }
  }

  /**
   * Decides, records the decision and starts an attempt; null when no worker is usable, or for a
   * hedge, when the only choice is what an attempt in `racing` already waits on (the same worker
   * with the same prefill worker: a twin there would only wait beside it).
   */
  #launch(
    request: DispatchRequest,
    wire: GenerateRequest,
    tried: Tried,
    reason: DecisionReason,
    racing: readonly WorkerAttempt[],
  ): WorkerAttempt | null {
    const { registry, logger } = this.#params;
    const nowMs = Date.now();
    this.#params.index.expire(nowMs);
    const routing: RoutingRequest = {
      requestId: request.requestId,
      numPromptTokens: request.promptTokenIds.length,
      blockKeys: request.blockKeys,
      routingKey: request.routingKey,
    };
    const decideStartMs = performance.now();
    let decision = this.decide(routing, tried.workers, nowMs);
    // No other worker left: a transient failure may still succeed on one already tried.
    if (decision.workerId === null && tried.workers.size > 0)
      decision = this.decide(routing, new Set(), nowMs);
    const worker = decision.workerId === null ? null : registry.get(decision.workerId);
    const prefill =
      worker?.role === 'decode' ? this.decidePrefill(routing, worker, tried.prefillWorkers, nowMs) : null;
    const prefillWorkerOf = (decision: PrefillDecision | null): string | null =>
      decision?.type === 'remote' ? decision.workerId : null;
    if (
      reason === 'hedge' &&
      worker !== null &&
      racing.some(
        (attempt) =>
          attempt.worker.workerId === worker.workerId &&
          prefillWorkerOf(attempt.prefill) === prefillWorkerOf(prefill),
      )
    ) {
      return null;
    }
    const attemptNumber = ++tried.numAttempts;
    this.#params.decisions.add({
      ...decision,
      prefill,
      atMs: nowMs,
      attempt: attemptNumber,
      reason,
      ...(request.admission === undefined ? {} : { admission: request.admission }),
    });
    this.#params.observer?.onDecision?.(decision, attemptNumber, performance.now() - decideStartMs);
    if (prefill !== null) this.#params.observer?.onPrefillDecision?.(prefill);
    if (logger.enabled('debug'))
      logger.debug('routing decision', { ...decision, prefill, attempt: attemptNumber, reason });
    if (worker === null) return null;
    tried.workers.add(worker.workerId);
    if (prefill?.type === 'remote') tried.prefillWorkers.add(prefill.workerId);
    const chosen = decision.candidates.find((c) => c.workerId === worker.workerId);
    // Attempts of one request may run at once (a hedge): each has its own id on the worker.
    const workerRequestId =
      attemptNumber === 1 ? request.workerRequestId : `${request.workerRequestId}-a${attemptNumber}`;
    const wirePrefill = toWirePrefill(workerRequestId, prefill);
    const call: GenerateRequest = {
      ...wire,
      requestId: workerRequestId,
      ...(wirePrefill === undefined ? {} : { prefill: create(PrefillEndpointSchema, wirePrefill) }),
    };
    const observer = this.#params.observer;
    return new WorkerAttempt(
      {
        index: this.#params.index,
        inflight: this.#params.inflight,
        registry,
        onRouted: (workerId, keys) => observer?.onRouted?.(workerId, keys),
        onFirstResponse: (workerId, ttftMs, numCached) =>
          observer?.onFirstResponse?.(workerId, ttftMs, numCached),
      },
      {
        worker,
        prefill,
        workerRequestId,
        call,
        blockKeys: request.blockKeys,
        numPromptTokens: request.promptTokenIds.length,
        numExpectedCachedTokens: chosen?.terms.cachedTokens ?? 0,
        pickSeq: ++this.#pickSeq,
        prefillPickSeq: prefill?.type === 'remote' ? ++this.#pickSeq : 0,
        signal: request.signal,
        route: startRoutingSpan(decision, prefill, attemptNumber),
      },
      nowMs,
    );
  }

  /** Predicted time to the first token of an attempt: its uncached prompt at the worker's rate. */
  #expectedFirstTokenMs(attempt: WorkerAttempt, request: DispatchRequest): number {
    const { registry } = this.#params;
    const prefill = attempt.prefill;
    if (prefill?.type === 'remote') {
      const prefillWorker = registry.get(prefill.workerId);
      if (prefillWorker !== null) return prefill.numUncachedTokens / registry.prefillRateFor(prefillWorker);
    }
    return request.promptTokenIds.length / registry.prefillRateFor(attempt.worker);
  }

  #hedgeDelayMs(attempt: WorkerAttempt, request: DispatchRequest): number {
    return this.#resilience.hedgeAfterMs + 2 * this.#expectedFirstTokenMs(attempt, request);
  }

  /** Full jitter: uniform in [0, min(max, base x 2^(failures - 1))). */
  async #backoff(numFailures: number, signal: AbortSignal): Promise<void> {
    const { retryBackoffMs, retryBackoffMaxMs } = this.#resilience;
    const ceilingMs = Math.min(retryBackoffMaxMs, retryBackoffMs * 2 ** (numFailures - 1));
    const delayMs = Math.floor(this.#params.random() * ceilingMs);
    if (delayMs <= 0) return;
    try {
      await sleep(delayMs, undefined, { signal });
    } catch {
      throw abortError(signal);
    }
  }

  #isSuspect(worker: WorkerRecord, nowMs: number): boolean {
    return nowMs - worker.lastHeardMs > this.#resilience.suspectAfterMs;
  }

  #noWorkerMessage(): string {
    return this.#params.registry.size === 0
      ? 'no workers are registered for this model'
      : 'no healthy worker is available';
  }
}

function abortError(signal: AbortSignal): TandemError {
  const reason: unknown = signal.reason;
  if (reason instanceof TandemError) return reason;
  return new CancelledError('the request was cancelled');
}

/** Resolves 'aborted' when the signal aborts (never rejects). */
function abortPromise(signal: AbortSignal): Promise<'aborted'> {
  if (signal.aborted) return Promise.resolve('aborted');
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve('aborted'), { once: true }));
}

/** The host part of host:port ([v6]:port too). */
function hostOf(address: string): string {
  const colon = address.lastIndexOf(':');
  return colon === -1 ? address : address.slice(0, colon);
}

function toWirePrefill(
  workerRequestId: string,
  decision: PrefillDecision | null,
): MessageInitShape<typeof PrefillEndpointSchema> | undefined {
  if (decision === null || decision.type === 'undecided') return undefined;
  if (decision.type === 'local') return { mode: PrefillMode.LOCAL };
  return {
    mode: PrefillMode.REMOTE,
    address: decision.address,
    workerId: decision.workerId,
    requestId: workerRequestId,
  };
}

/**
 * The Generate call for a request (without the prefill decision), checked to encode: a message
 * the router cannot encode is its own failure and must never count against a worker's breaker.
 */
function encodableWireRequest(request: DispatchRequest): GenerateRequest {
  const wire = create(GenerateRequestSchema, toWireRequest(request));
  try {
    toBinary(GenerateRequestSchema, wire);
  } catch (cause) {
    throw new RequestNotEncodableError('the request could not be encoded for the workers', { cause });
  }
  return wire;
}

function toWireRequest(request: DispatchRequest): MessageInitShape<typeof GenerateRequestSchema> {
  const { options } = request;
  const { sampling } = options;
  const logitBias: Record<number, number> = {};
  for (const [tokenId, bias] of sampling.logitBias) logitBias[tokenId] = bias;
  return {
    requestId: request.workerRequestId,
    promptTokenIds: [...request.promptTokenIds],
    sampling: {
      temperature: sampling.temperature,
      topP: sampling.topP,
      topK: sampling.topK,
      minP: sampling.minP,
      repetitionPenalty: sampling.repetitionPenalty,
      frequencyPenalty: sampling.frequencyPenalty,
      presencePenalty: sampling.presencePenalty,
      logitBias,
      ...(sampling.seed === null ? {} : { seed: BigInt.asUintN(64, BigInt(sampling.seed)) }),
    },
    maxTokens: request.maxTokens,
    minTokens: options.minTokens,
    stopTokenIds: options.stopTokenIds,
    ignoreEos: options.ignoreEos,
    n: options.n,
    logprobs: options.logprobs,
    topLogprobs: options.topLogprobs,
    ...(options.constraint === null
      ? {}
      : { constraint: constraintToWire(options.constraint, options.constraintPrefixTokenIds) }),
  };
}
