// Bounded admission: at most `maxConcurrent` requests run; up to `maxQueued` more wait in FIFO
// order; beyond that a request is refused at once (429 with Retry-After).
import { QueueFullError } from '../errors.ts';

export interface AdmissionParams {
  maxConcurrent: number;
  maxQueued: number;
  /** Retry-After given to refused requests. */
  retryAfterMs: number;
}

export const defaultAdmissionParams: AdmissionParams = {
  maxConcurrent: 256,
  maxQueued: 1024,
  retryAfterMs: 1000,
};

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (error: unknown) => void;
}

export class AdmissionQueue {
  readonly #params: AdmissionParams;
  #numRunning = 0;
  readonly #waiting: Waiter[] = [];

  constructor(params: AdmissionParams = defaultAdmissionParams) {
    this.#params = params;
  }

  get numRunning(): number {
    return this.#numRunning;
  }

  get numQueued(): number {
    return this.#waiting.length;
  }

  /** Resolves with a release function once the request may run. Aborting the signal leaves the queue. */
  admit(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#numRunning < this.#params.maxConcurrent && this.#waiting.length === 0) {
      this.#numRunning++;
      return Promise.resolve(this.#releaser());
    }
    if (this.#waiting.length >= this.#params.maxQueued) {
      return Promise.reject(
        new QueueFullError(`the router's queue is full (${this.#params.maxQueued} waiting); retry later`, {
          retryAfterMs: this.#params.retryAfterMs,
        }),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      this.#waiting.push(waiter);
      signal.addEventListener(
        'abort',
        () => {
          const index = this.#waiting.indexOf(waiter);
          if (index !== -1) {
            this.#waiting.splice(index, 1);
            reject(signal.reason);
          }
        },
        { once: true },
      );
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next !== undefined) next.resolve(this.#releaser());
      else this.#numRunning--;
    };
  }
}
