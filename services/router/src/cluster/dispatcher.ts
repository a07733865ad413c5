// Routes one prompt and runs it on a worker: builds the candidates' views, asks the policy,
// records the decision, applies its side effects (optimistic index insert, in-flight counts,
// pick order), streams the worker's Generate call, and retries on another worker when the call
// fails before its first token. A worker's failures feed its circuit breaker.
import { CancelledError, InvalidArgumentError, type Logger, TandemError } from '@tandem/common';
import type { GenerateRequestSchema, GenerateResponse, MessageInitShape } from '@tandem/proto';
import { NoWorkersError } from '../errors.ts';
import type { BlockKeys } from '../kv/block-keys.ts';
import type { KvIndex } from '../kv/kv-index.ts';
import type { GenerationOptions } from '../openai/request.ts';
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
  observer?: DispatchObserver;
}

/** Worker errors that say the request itself is wrong: no retry, no breaker penalty. */
function isRequestFault(error: unknown): boolean {
  return error instanceof InvalidArgumentError || error instanceof CancelledError;
}

export class Dispatcher {
  readonly #params: DispatcherParams;
  #pickSeq = 0;
  readonly #depths = new Uint32Array(32);

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
    let slotMask = 0;
    for (const worker of registry.all()) {
      if (exclude.has(worker.workerId) || !worker.breaker.allows(nowMs)) continue;
      const slot = index.slotOf(worker.workerId);
      if (slot !== -1) slotMask |= 1 << slot;
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
      this.#depths.fill(0);
      index.matchDepths(request.blockKeys, slotMask >>> 0, this.#depths);
      matchDepthBySlot = this.#depths;
    }
    return policy.decide(request, candidates, { matchDepthBySlot, random: this.#params.random });
  }

  /** Streams the worker's responses for one prompt (all choices). */
  async *generate(request: DispatchRequest): AsyncGenerator<GenerateResponse> {
    const { registry, logger, maxAttempts } = this.#params;
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
      this.#params.decisions.add({ ...decision, atMs: nowMs, attempt });
      this.#params.observer?.onDecision?.(decision, attempt, performance.now() - decideStartMs);
      if (logger.enabled('debug')) logger.debug('routing decision', { ...decision, attempt });
      const worker = decision.workerId === null ? null : registry.get(decision.workerId);
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
        for await (const response of this.#run(worker, request, nowMs, numCachedTokens)) {
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
    request: DispatchRequest,
    nowMs: number,
    numExpectedCachedTokens: number,
  ): AsyncGenerator<GenerateResponse> {
    const { index, inflight, registry } = this.#params;
    const workerId = worker.workerId;
    worker.lastPickedSeq = ++this.#pickSeq;
    worker.breaker.onAttempt(nowMs);
    index.insertOptimistic(workerId, request.blockKeys, nowMs);
    this.#params.observer?.onRouted?.(workerId, request.blockKeys);
    inflight.acquire(workerId);
    const prefill = { sentAtMs: nowMs, numTokens: request.promptTokenIds.length - numExpectedCachedTokens };
    worker.pendingPrefills.set(request.workerRequestId, prefill);
    let first = true;
    try {
      const stream = worker.client.generate(toWireRequest(request), { signal: request.signal });
      for await (const response of stream) {
        if (first) {
          first = false;
          const ttftMs = Date.now() - nowMs;
          worker.pendingPrefills.delete(request.workerRequestId);
          worker.recentPrefills.push({ ...prefill, firstTokenAtMs: Date.now() });
          worker.breaker.onSuccess();
          registry.recordPrefill(workerId, response.numPromptTokens - response.numCachedTokens, ttftMs);
          this.#params.observer?.onFirstResponse?.(workerId, ttftMs, response.numCachedTokens);
        }
        yield response;
      }
    } catch (error) {
      if (request.signal.aborted) throw abortError(request.signal);
      throw error;
    } finally {
      worker.pendingPrefills.delete(request.workerRequestId);
      inflight.release(workerId);
    }
  }
}

function abortError(signal: AbortSignal): TandemError {
  const reason: unknown = signal.reason;
  if (reason instanceof TandemError) return reason;
  return new CancelledError('the request was cancelled');
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
