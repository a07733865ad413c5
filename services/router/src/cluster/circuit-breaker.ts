// One worker's circuit breaker: after `failureThreshold` consecutive failures the worker gets no
// traffic for `openMs`; then one probe request (or health check) may pass, and its outcome
// closes or reopens the circuit.

export interface CircuitBreakerParams {
  failureThreshold: number;
  openMs: number;
}

export const defaultCircuitBreakerParams: CircuitBreakerParams = { failureThreshold: 3, openMs: 5000 };

export type CircuitState = 'closed' | 'open' | 'half_open';

export class CircuitBreaker {
  readonly #params: CircuitBreakerParams;
  #consecutiveFailures = 0;
  #openedAtMs: number | null = null;
  #probeInFlight = false;

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
    return state === 'closed' || (state === 'half_open' && !this.#probeInFlight);
  }

  /** A request was sent; in half-open it is the probe. */
  onAttempt(nowMs: number): void {
    if (this.state(nowMs) === 'half_open') this.#probeInFlight = true;
  }

  onSuccess(): void {
    this.#consecutiveFailures = 0;
    this.#openedAtMs = null;
    this.#probeInFlight = false;
  }

  onFailure(nowMs: number): void {
    this.#consecutiveFailures++;
    this.#probeInFlight = false;
    if (this.#openedAtMs !== null || this.#consecutiveFailures >= this.#params.failureThreshold) {
      this.#openedAtMs = nowMs;
    }
  }

  get numConsecutiveFailures(): number {
    return this.#consecutiveFailures;
  }
}
