// One worker's circuit breaker: after `failureThreshold` consecutive failures the worker gets no
// traffic for `openMs`; then it is half-open: one probe at a time (a request or a health check)
// may pass, and the circuit closes only after `successThreshold` good probes in a row (one good
// answer from a worker that was failing proves little); a failed probe opens it again.
//
// Every attempt holds a ticket and settles it exactly once: success, failure, or neutral (the
// request itself was at fault, or its client left): a probe that ends neutral frees the probe slot
// without judging the worker. A probe slot whose holder vanished anyway is taken back after
// `maxProbeMs`. (Issue 18, defect 1: a probe that ended on a 4xx or a client abort kept the slot
// forever, and with it every healthy worker out of rotation.)

export interface CircuitBreakerParams {
  failureThreshold: number;
  openMs: number;
  /** Good probes in a row that close a half-open circuit. */
  successThreshold: number;
}

export const defaultCircuitBreakerParams: CircuitBreakerParams = {
  failureThreshold: 3,
  openMs: 5000,
  successThreshold: 3,
};

export type CircuitState = 'closed' | 'open' | 'half_open';

/** One attempt's hold on the breaker; the first settle call counts, later ones are ignored. */
export interface BreakerTicket {
  /** Whether this attempt is the half-open probe. */
  readonly isProbe: boolean;
  success(): void;
  failure(nowMs: number): void;
  /** Neither: the request was at fault or was cancelled. Frees a probe slot. */
  neutral(): void;
}

/** A probe slot held longer than this (ms) is taken back: its holder can no longer settle it. */
const maxProbeMs = 120_000;

export class CircuitBreaker {
  readonly #params: CircuitBreakerParams;
  #consecutiveFailures = 0;
  #openedAtMs: number | null = null;
  #goodProbes = 0;
  /** When the probe in flight started, or null. */
  #probeSinceMs: number | null = null;
  /** Which ticket holds the probe slot. */
  #probeSeq = 0;

  constructor(params: CircuitBreakerParams = defaultCircuitBreakerParams) {
    this.#params = params;
  }

  state(nowMs: number): CircuitState {
    if (this.#openedAtMs === null) return 'closed';
    return nowMs - this.#openedAtMs >= this.#params.openMs ? 'half_open' : 'open';
  }

  /** Whether a request may go to the worker now (in half-open, only one probe at a time). */
  allows(nowMs: number): boolean {
    const state = this.state(nowMs);
    return state === 'closed' || (state === 'half_open' && !this.#probeBusy(nowMs));
  }

  /** An attempt starts (in half-open it is the probe); settle the ticket when it ends. */
  onAttempt(nowMs: number): BreakerTicket {
    const isProbe = this.state(nowMs) === 'half_open';
    const probeSeq = isProbe ? ++this.#probeSeq : 0;
    if (isProbe) this.#probeSinceMs = nowMs;
    let settled = false;
    const settle = (apply: () => void): void => {
      if (settled) return;
      settled = true;
      if (isProbe && this.#probeSeq === probeSeq) this.#probeSinceMs = null;
      apply();
    };
    return {
      isProbe,
      success: () => settle(() => this.#onSuccess(isProbe)),
      failure: (failedAtMs) => settle(() => this.#onFailure(failedAtMs)),
      neutral: () => settle(() => {}),
    };
  }

  /** A failure seen outside an attempt's first response (a worker that died mid-stream). */
  recordFailure(nowMs: number): void {
    this.#onFailure(nowMs);
  }

  get numConsecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  #probeBusy(nowMs: number): boolean {
    return this.#probeSinceMs !== null && nowMs - this.#probeSinceMs < maxProbeMs;
  }

  #onSuccess(isProbe: boolean): void {
    this.#consecutiveFailures = 0;
    if (this.#openedAtMs === null) return;
    // A request that started before the circuit opened proves nothing about the worker now.
    if (!isProbe) return;
    this.#goodProbes++;
    if (this.#goodProbes >= this.#params.successThreshold) {
      this.#openedAtMs = null;
      this.#goodProbes = 0;
    }
  }

  #onFailure(nowMs: number): void {
    this.#consecutiveFailures++;
    this.#goodProbes = 0;
    if (this.#openedAtMs !== null || this.#consecutiveFailures >= this.#params.failureThreshold) {
      this.#openedAtMs = nowMs;
    }
  }
}
