// Bounded admission by count and by cost: at most `maxConcurrent` requests run, and together they
// cost at most `maxRunningCost` (see requestCost: what a request makes the router hold and the
// workers compute). Up to `maxQueued` more wait in FIFO order, each at most `queueTimeoutMs`
// (then 503 queue_timeout); beyond that a request is refused at once (429 with Retry-After). A
// request costlier than the whole budget runs alone rather than never. (Issue 18, defect 7: four
// n = 16 x 1,000-token requests with logprobs = 20 counted as four of 256 and pushed the router's
// memory from 126 to 424 MB; a queued request waited forever.)
import { QueueFullError, QueueTimeoutError } from '../errors.ts';

export interface AdmissionParams {
  maxConcurrent: number;
  maxQueued: number;
  /** Retry-After given to refused requests. */
  retryAfterMs: number;
  /** Cost units (requestCost) of the requests running at once. */
  maxRunningCost: number;
  /** Longest wait in the queue. */
  queueTimeoutMs: number;
}

export const defaultAdmissionParams: AdmissionParams = {
  maxConcurrent: 256,
  maxQueued: 1024,
  retryAfterMs: 1000,
  maxRunningCost: 2_000_000,
  queueTimeoutMs: 30_000,
};

/** What a request asks for, in the units of its cost. */
export interface RequestShape {
  numPromptTokens: number;
  /** Choices per prompt. */
  n: number;
  /** Generated tokens per choice (at most). */
  maxTokens: number;
  /** Logprob entries per generated token: 0 without logprobs, else 1 + top_logprobs. */
  numLogprobEntries: number;
}

/**
 * A prompt's cost: its tokens (the workers compute them, the router holds them) plus every token
 * it may generate, each with its logprob entries (what the router buffers and renders).
 */
export function requestCost(shape: RequestShape): number {
  return shape.numPromptTokens + shape.n * shape.maxTokens * (1 + shape.numLogprobEntries);
}

interface Waiter {
  cost: number;
  resolve: (release: () => void) => void;
  reject: (error: unknown) => void;
}

export class AdmissionQueue {
  readonly #params: AdmissionParams;
  #numRunning = 0;
  #runningCost = 0;
  readonly #waiting: Waiter[] = [];

  constructor(params: AdmissionParams = defaultAdmissionParams) {
    this.#params = params;
  }

  get numRunning(): number {
    return this.#numRunning;
  }

  get runningCost(): number {
    return this.#runningCost;
  }

  get numQueued(): number {
    return this.#waiting.length;
  }

  /**
   * Resolves with a release function once the request may run. Aborting the signal leaves the
   * queue; so does its deadline (QueueTimeoutError).
   */
  admit(signal: AbortSignal, cost = 1): Promise<() => void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#waiting.length === 0 && this.#fits(cost)) return Promise.resolve(this.#start(cost));
    if (this.#waiting.length >= this.#params.maxQueued) {
      return Promise.reject(
        new QueueFullError(`the router's queue is full (${this.#params.maxQueued} waiting); retry later`, {
          retryAfterMs: this.#params.retryAfterMs,
        }),
      );
    }
    return new Promise((resolve, reject) => {
      const leave = (error: unknown): void => {
        const index = this.#waiting.indexOf(waiter);
        if (index === -1) return;
        this.#waiting.splice(index, 1);
        cleanup();
        reject(error);
        // The head may have been what blocked the others.
        this.#admitWaiting();
      };
      const onAbort = (): void => leave(signal.reason);
      const timer = setTimeout(
        () =>
          leave(
            new QueueTimeoutError(
              `the request waited ${this.#params.queueTimeoutMs} ms for admission; the router is overloaded, retry later`,
            ),
          ),
        this.#params.queueTimeoutMs,
      );
      timer.unref();
      const cleanup = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        cost,
        resolve: (release) => {
          cleanup();
          resolve(release);
        },
        reject,
      };
      this.#waiting.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Room for `cost` now: under both limits, or nothing else runs (a request costlier than all). */
  #fits(cost: number): boolean {
    if (this.#numRunning >= this.#params.maxConcurrent) return false;
    return this.#numRunning === 0 || this.#runningCost + cost <= this.#params.maxRunningCost;
  }

  #start(cost: number): () => void {
    this.#numRunning++;
    this.#runningCost += cost;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#numRunning--;
      this.#runningCost -= cost;
      this.#admitWaiting();
    };
  }

  /** Admits waiters from the head while they fit (FIFO: a costly head waits, and so do the rest). */
  #admitWaiting(): void {
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0]!.cost)) {
      const next = this.#waiting.shift()!;
      next.resolve(this.#start(next.cost));
    }
  }
}
