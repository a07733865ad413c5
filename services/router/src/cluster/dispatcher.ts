// Routes one prompt and runs it on a worker: builds the candidates' views, asks the policy,
// records the decision, applies its side effects (optimistic index insert, in-flight counts,
// pick order), streams the worker's Generate call, and retries on another worker when the call
// fails before its first token. A worker's failures feed its circuit breaker. For a decode worker
// it also chooses the prefill worker, or a local prefill (policy/prefill-policy.ts), and names
// that choice in the Generate call.
import { CancelledError, InvalidArgumentError, type Logger, TandemError } from '@tandem/common';
import {
  create,
  type GenerateRequest,
  GenerateRequestSchema,
  type GenerateResponse,
  type MessageInitShape,
  PrefillEndpointSchema,
  PrefillMode,
  toBinary,
} from '@tandem/proto';
import { NoWorkersError, RequestNotEncodableError } from '../errors.ts';
import type { BlockKeys } from '../kv/block-keys.ts';
import type { KvIndex } from '../kv/kv-index.ts';
import type { GenerationOptions } from '../openai/request.ts';
import {
  choosePrefill,
  defaultPrefillPolicyParams,
  type PrefillDecision,
  type PrefillPolicyParams,
  type PrefillWorkerView,
} from '../policy/prefill-policy.ts';
import type { Decision, Policy, RoutingRequest, WorkerView } from '../policy/types.ts';
import type { DecisionLog } from './decision-log.ts';
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
}

export interface DispatcherParams {
  policy: Policy;
  index: KvIndex;
  registry: WorkerRegistry;
  inflight: InflightCounts;
  decisions: DecisionLog;
  random: () => number;
  logger: Logger;
  /** Tries per request, counting the first (each on a different worker). */
  maxAttempts: number;
  /** How a decode worker's prompt is prefilled (default: defaultPrefillPolicyParams). */
  prefill?: PrefillPolicyParams;
  observer?: DispatchObserver;
}

/** Worker errors that say the request itself is wrong: no retry, no breaker penalty. */
function isRequestFault(error: unknown): boolean {
  return error instanceof InvalidArgumentError || error instanceof CancelledError;
}

/** A depths buffer with room for every index slot (matchDepths writes each candidate's entry). */
function fitSlots(depths: Uint32Array<ArrayBuffer>, slotCapacity: number): Uint32Array<ArrayBuffer> {
  return depths.length >= slotCapacity ? depths : new Uint32Array(2 * slotCapacity);
}

export class Dispatcher {
  readonly #params: DispatcherParams;
  #pickSeq = 0;
  #depths = new Uint32Array(32);
  #prefillDepths = new Uint32Array(32);

  constructor(params: DispatcherParams) {
    this.#params = params;
  }

  get policyName(): string {
    return this.#params.policy.name;
  }

  /** The decision for a request among the usable workers not in `exclude` (no side effects). */
  decide(request: RoutingRequest, exclude: ReadonlySet<string>, nowMs: number): Decision {
    const { registry, index, policy, inflight } = this.#params;
    const candidates: WorkerView[] = [];
    const slots: number[] = [];
    for (const worker of registry.all()) {
      if (exclude.has(worker.workerId) || !worker.breaker.allows(nowMs)) continue;
      const slot = index.slotOf(worker.workerId);
      slots.push(slot);
      let numQueuedPrefillTokens = worker.numOthersQueuedPrefillTokens;
      for (const prefill of worker.pendingPrefills.values()) numQueuedPrefillTokens += prefill.numTokens;
      candidates.push({
        workerId: worker.workerId,
        slot,
        numInflight: inflight.count(worker.workerId),
        load: worker.load,
        numQueuedPrefillTokens,
        numDecoding: Math.max(0, inflight.count(worker.workerId) - worker.pendingPrefills.size),
        prefillTokensPerMs: registry.prefillRateFor(worker),
        pageSize: worker.pageSize,
        lastPickedSeq: worker.lastPickedSeq,
      });
    }
    candidates.sort((a, b) => (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0));
    let matchDepthBySlot: Uint32Array | null = null;
    if (policy.needsPrefix && candidates.length > 0) {
      this.#depths = fitSlots(this.#depths, index.slotCapacity);
      index.matchDepths(request.blockKeys, slots, this.#depths);
      matchDepthBySlot = this.#depths;
    }
    return policy.decide(request, candidates, { matchDepthBySlot, random: this.#params.random });
  }

  /**
   * For a decode worker `decode`: the prefill worker that computes the prompt, or a local prefill,
   * or no decision when no prefill worker is known (no side effects).
   */
  decidePrefill(request: RoutingRequest, decode: WorkerRecord): PrefillDecision {
    const { registry, index } = this.#params;
    const prefillWorkers = registry.prefillWorkers();
    if (prefillWorkers.length === 0) return { type: 'undecided', reason: 'no prefill worker known' };
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
    return choosePrefill(
      {
        numPromptTokens: request.numPromptTokens,
        numCachedOnDecode: Math.min(decodeDepth * decode.pageSize, request.numPromptTokens),
        decodePageSize: decode.pageSize,
        decodeKvBytesPerPage: decode.kvBytesPerPage,
      },
      views,
      this.#prefillDepths,
      this.#params.prefill ?? defaultPrefillPolicyParams,
    );
  }

  /** Streams the worker's responses for one prompt (all choices). */
  async *generate(request: DispatchRequest): AsyncGenerator<GenerateResponse> {
    const { registry, logger, maxAttempts } = this.#params;
    const wire = encodableWireRequest(request);
    const tried = new Set<string>();
    let lastError: unknown = null;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      if (request.signal.aborted) throw abortError(request.signal);
      const nowMs = Date.now();
      this.#params.index.expire(nowMs);
      const routing: RoutingRequest = {
        requestId: request.requestId,
        numPromptTokens: request.promptTokenIds.length,
        blockKeys: request.blockKeys,
        routingKey: request.routingKey,
      };
      const decideStartMs = performance.now();
      let decision = this.decide(routing, tried, nowMs);
      // No other worker left: a transient failure may still succeed on one already tried.
      if (decision.workerId === null && tried.size > 0) decision = this.decide(routing, new Set(), nowMs);
      const worker = decision.workerId === null ? null : registry.get(decision.workerId);
      const prefill = worker?.role === 'decode' ? this.decidePrefill(routing, worker) : null;
      this.#params.decisions.add({ ...decision, prefill, atMs: nowMs, attempt });
      this.#params.observer?.onDecision?.(decision, attempt, performance.now() - decideStartMs);
      if (prefill !== null) this.#params.observer?.onPrefillDecision?.(prefill);
      if (logger.enabled('debug')) logger.debug('routing decision', { ...decision, prefill, attempt });
      if (worker === null) {
        if (lastError !== null) throw lastError;
        throw new NoWorkersError(
          registry.size === 0 ? 'no workers are registered for this model' : 'no healthy worker is available',
        );
      }
      tried.add(worker.workerId);
      const chosen = decision.candidates.find((c) => c.workerId === worker.workerId);
      const numCachedTokens = chosen?.terms.cachedTokens ?? 0;
      let numResponses = 0;
      try {
        for await (const response of this.#run(worker, prefill, request, wire, nowMs, numCachedTokens)) {
          numResponses++;
          yield response;
        }
        return;
      } catch (error) {
        if (numResponses > 0 || isRequestFault(error) || request.signal.aborted) throw error;
        worker.breaker.onFailure(Date.now());
        lastError = error;
        this.#params.observer?.onRetry?.(worker.workerId, error);
        logger.warn('worker failed before the first token; retrying elsewhere', {
          requestId: request.requestId,
          workerId: worker.workerId,
          attempt,
          error,
        });
      }
    }
    throw lastError ?? new NoWorkersError('no worker could serve the request');
  }

  async *#run(
    worker: WorkerRecord,
    prefillDecision: PrefillDecision | null,
    request: DispatchRequest,
    wire: WireRequest,
    nowMs: number,
    numExpectedCachedTokens: number,
  ): AsyncGenerator<GenerateResponse> {
    const { index, inflight, registry } = this.#params;
    const workerId = worker.workerId;
    const requestId = request.workerRequestId;
    registry.markPicked(workerId, ++this.#pickSeq);
    worker.breaker.onAttempt(nowMs);
    index.insertOptimistic(workerId, request.blockKeys, nowMs);
    this.#params.observer?.onRouted?.(workerId, request.blockKeys);
    inflight.acquire(workerId);
    // A remote prefill computes on the prefill worker: its queue grows, the decode worker's does not.
    const remote =
      prefillDecision?.type === 'remote' ? (registry.get(prefillDecision.workerId) ?? null) : null;
    registry.prefillSent(
      workerId,
      requestId,
      nowMs,
      remote === null ? request.promptTokenIds.length - numExpectedCachedTokens : 0,
    );
    if (remote !== null && prefillDecision?.type === 'remote') {
      registry.markPicked(remote.workerId, ++this.#pickSeq);
      index.insertOptimistic(remote.workerId, request.blockKeys, nowMs);
      this.#params.observer?.onRouted?.(remote.workerId, request.blockKeys);
      registry.prefillSent(remote.workerId, requestId, nowMs, prefillDecision.numUncachedTokens);
    }
    let first = true;
    try {
      const prefill = toWirePrefill(request, prefillDecision);
      const call =
        prefill === undefined ? wire : { ...wire, prefill: create(PrefillEndpointSchema, prefill) };
      const stream = worker.client.generate(call, {
        signal: request.signal,
      });
      for await (const response of stream) {
        if (first) {
          first = false;
          const firstAtMs = Date.now();
          const ttftMs = firstAtMs - nowMs;
          registry.prefillDone(workerId, requestId, firstAtMs);
          worker.breaker.onSuccess();
          if (remote !== null && prefillDecision?.type === 'remote') {
            registry.prefillDone(remote.workerId, requestId, firstAtMs);
            // The prefill worker's rate, transfer included: what the next choice predicts.
            registry.recordPrefill(remote.workerId, prefillDecision.numUncachedTokens, ttftMs);
          } else {
            registry.recordPrefill(workerId, response.numPromptTokens - response.numCachedTokens, ttftMs);
          }
          this.#params.observer?.onFirstResponse?.(workerId, ttftMs, response.numCachedTokens);
        }
        yield response;
      }
    } catch (error) {
      if (request.signal.aborted) throw abortError(request.signal);
      throw error;
    } finally {
      registry.prefillAbandoned(workerId, requestId);
      if (remote !== null) registry.prefillAbandoned(remote.workerId, requestId);
      inflight.release(workerId);
    }
  }
}

function abortError(signal: AbortSignal): TandemError {
  const reason: unknown = signal.reason;
  if (reason instanceof TandemError) return reason;
  return new CancelledError('the request was cancelled');
}

/** The host part of host:port ([v6]:port too). */
function hostOf(address: string): string {
  const colon = address.lastIndexOf(':');
  return colon === -1 ? address : address.slice(0, colon);
}

function toWirePrefill(
  request: DispatchRequest,
  decision: PrefillDecision | null,
): MessageInitShape<typeof GenerateRequestSchema>['prefill'] {
  if (decision === null || decision.type === 'undecided') return undefined;
  if (decision.type === 'local') return { mode: PrefillMode.LOCAL };
  return {
    mode: PrefillMode.REMOTE,
    address: decision.address,
    workerId: decision.workerId,
    requestId: request.workerRequestId,
  };
}

type WireRequest = GenerateRequest;

/**
 * The Generate call for a request (without the prefill decision), checked to encode: a message
 * the router cannot encode is its own failure and must never count against a worker's breaker.
 */
function encodableWireRequest(request: DispatchRequest): WireRequest {
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
  };
}
