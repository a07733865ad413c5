// One Generate call on one worker, with everything the router keeps about it while it runs: the
// worker's pick order, its circuit-breaker ticket, the optimistic index entries, the in-flight
// count, and the prompt in its prefill queue (and in its prefill worker's, when one is named).
// The dispatcher races attempts (a hedge, a first-byte deadline) through first(); the winner's
// stream goes on through rest(). Every attempt settles its breaker ticket exactly once: success at
// the first response; failure when the worker failed (or missed its first-byte deadline); neutral
// when the request was at fault or the attempt was cancelled (a lost hedge, a client that left).
import { CancelledError, type Context, endSpan, type Span, TandemError, withContext } from '@tandem/common';
import type { GenerateRequest, GenerateResponse } from '@tandem/proto';
import { FirstByteTimeoutError } from '../errors.ts';
import type { BlockKeys } from '../kv/block-keys.ts';
import type { KvIndex } from '../kv/kv-index.ts';
import type { PrefillDecision } from '../policy/prefill-policy.ts';
import type { BreakerTicket } from './circuit-breaker.ts';
import type { InflightCounts } from './inflight.ts';
import type { WorkerRecord, WorkerRegistry } from './worker-registry.ts';

/** How a failure counts: against the worker (retry elsewhere, breaker), or against the request. */
export type FailureKind = 'worker' | 'busy' | 'request';

/**
 * Worker faults are retried on another worker and count against the breaker; `busy` (out of
 * pages, a full queue) is retried but says nothing about the worker's health; anything about the
 * request itself (a bad field, a cancellation) is neither.
 */
export function failureKindOf(error: unknown): FailureKind {
  if (!(error instanceof TandemError)) return 'worker';
  switch (error.code) {
    case 'invalid_argument':
    case 'failed_precondition':
    case 'not_found':
    case 'already_exists':
    case 'cancelled':
      return 'request';
    case 'resource_exhausted':
      return 'busy';
    default:
      return 'worker';
  }
}

export type FirstOutcome =
  | { type: 'response'; response: GenerateResponse }
  | { type: 'error'; error: unknown }
  /** The stream ended without a single response. */
  | { type: 'ended' };

export interface AttemptDeps {
  index: KvIndex;
  inflight: InflightCounts;
  registry: WorkerRegistry;
  /** A prompt went to a worker (the routed feed tells the other replicas). */
  onRouted: (workerId: string, keys: BlockKeys) => void;
  onFirstResponse: (workerId: string, ttftMs: number, numCachedTokens: number) => void;
}

export interface AttemptSpec {
  worker: WorkerRecord;
  /** For a decode worker: who prefills (or null for a unified worker). */
  prefill: PrefillDecision | null;
  /** The worker-facing request id of this attempt (unique: two attempts may run at once). */
  workerRequestId: string;
  /** The Generate call, the prefill decision and request id filled in. */
  call: GenerateRequest;
  blockKeys: BlockKeys;
  numPromptTokens: number;
  /** Prompt tokens the decision expected the worker to have cached. */
  numExpectedCachedTokens: number;
  pickSeq: number;
  prefillPickSeq: number;
  /** Cancelled with the request (client gone, deadline). */
  signal: AbortSignal;
  /** This attempt's routing span (request-trace.ts): the worker call is its child; ended with it. */
  route: { span: Span; context: Context };
}

export class WorkerAttempt {
  readonly worker: WorkerRecord;
  readonly prefill: PrefillDecision | null;
  readonly startedAtMs: number;
  readonly #deps: AttemptDeps;
  readonly #spec: AttemptSpec;
  readonly #controller = new AbortController();
  readonly #iterator: AsyncGenerator<GenerateResponse>;
  #first: Promise<FirstOutcome> | null = null;

  constructor(deps: AttemptDeps, spec: AttemptSpec, nowMs: number) {
    this.#deps = deps;
    this.#spec = spec;
    this.worker = spec.worker;
    this.prefill = spec.prefill;
    this.startedAtMs = nowMs;
    this.#iterator = this.#run(nowMs);
  }

  /** The first response, or how the attempt ended before one (never rejects). */
  first(): Promise<FirstOutcome> {
    this.#first ??= this.#iterator.next().then(
      (result): FirstOutcome =>
        result.done ? { type: 'ended' } : { type: 'response', response: result.value },
      (error: unknown): FirstOutcome => ({ type: 'error', error }),
    );
    return this.#first;
  }

  /** The responses after the first (call once, after first() gave a response). */
  async *rest(): AsyncGenerator<GenerateResponse> {
    try {
      while (true) {
        const result = await this.#iterator.next();
        if (result.done) return;
        yield result.value;
      }
    } finally {
      await this.#iterator.return(undefined);
    }
  }

  /** Stops the call (a lost hedge, a missed deadline); the attempt then ends with `reason`. */
  cancel(reason: TandemError): void {
    this.#controller.abort(reason);
  }

  /** Releases an attempt that will not be read further (after cancel, or a first-only use). */
  async discard(): Promise<void> {
    this.#controller.abort(new CancelledError('attempt discarded'));
    await this.first();
    await this.#iterator.return(undefined);
  }

  async *#run(nowMs: number): AsyncGenerator<GenerateResponse> {
    const { index, inflight, registry } = this.#deps;
    const spec = this.#spec;
    const { worker, prefill } = spec;
    const workerId = worker.workerId;
    const requestId = spec.workerRequestId;
    const signal = this.#controller.signal;
    const onRequestAbort = (): void => this.#controller.abort(spec.signal.reason);
    if (spec.signal.aborted) onRequestAbort();
    else spec.signal.addEventListener('abort', onRequestAbort, { once: true });
    registry.markPicked(workerId, spec.pickSeq);
    const ticket: BreakerTicket = worker.breaker.onAttempt(nowMs);
    index.insertOptimistic(workerId, spec.blockKeys, nowMs);
    this.#deps.onRouted(workerId, spec.blockKeys);
    inflight.acquire(workerId);
    // A remote prefill computes on the prefill worker: its queue grows, the decode worker's does not.
    const remote = prefill?.type === 'remote' ? (registry.get(prefill.workerId) ?? null) : null;
    registry.prefillSent(
      workerId,
      requestId,
      nowMs,
      remote === null ? spec.numPromptTokens - spec.numExpectedCachedTokens : 0,
    );
    if (remote !== null && prefill?.type === 'remote') {
      registry.markPicked(remote.workerId, spec.prefillPickSeq);
      index.insertOptimistic(remote.workerId, spec.blockKeys, nowMs);
      this.#deps.onRouted(remote.workerId, spec.blockKeys);
      registry.prefillSent(remote.workerId, requestId, nowMs, prefill.numUncachedTokens);
    }
    let routeEnded = false;
    const endRoute = (error: unknown = null): void => {
      if (routeEnded) return;
      routeEnded = true;
      endSpan(spec.route.span, error);
    };
    let first = true;
    try {
      const stream = withContext(spec.route.context, () => worker.client.generate(spec.call, { signal }));
      for await (const response of stream) {
        if (first) {
          first = false;
          const firstAtMs = Date.now();
          const ttftMs = firstAtMs - nowMs;
          registry.prefillDone(workerId, requestId, firstAtMs);
          ticket.success();
          if (remote !== null && prefill?.type === 'remote') {
            registry.prefillDone(remote.workerId, requestId, firstAtMs);
            // The prefill worker's rate, transfer included: what the next choice predicts.
            registry.recordPrefill(remote.workerId, prefill.numUncachedTokens, ttftMs);
          } else {
            registry.recordPrefill(workerId, response.numPromptTokens - response.numCachedTokens, ttftMs);
          }
          this.#deps.onFirstResponse(workerId, ttftMs, response.numCachedTokens);
        }
        yield response;
      }
    } catch (error) {
      endRoute(error);
      if (signal.aborted) {
        const reason: unknown = signal.reason;
        // A missed first-byte deadline is the worker's; anything else that cancelled us is not.
        if (reason instanceof FirstByteTimeoutError) ticket.failure(Date.now());
        else ticket.neutral();
        throw reason instanceof TandemError ? reason : new CancelledError('the request was cancelled');
      }
      if (failureKindOf(error) === 'worker') ticket.failure(Date.now());
      else ticket.neutral();
      throw error;
    } finally {
      endRoute();
      ticket.neutral(); // no-op once settled
      spec.signal.removeEventListener('abort', onRequestAbort);
      registry.prefillAbandoned(workerId, requestId);
      if (remote !== null) registry.prefillAbandoned(remote.workerId, requestId);
      inflight.release(workerId);
    }
  }
}
