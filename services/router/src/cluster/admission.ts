// Bounded admission by count and by cost: at most `maxConcurrent` requests run, and together they
// cost at most `maxRunningCost` (see requestCost: what a request makes the router hold and the
// workers compute). Up to `maxQueued` more wait, each at most `queueTimeoutMs` (then 503
// queue_timeout); beyond that a request is refused at once (429 with Retry-After). A request
// costlier than the whole budget runs alone rather than never. (Issue 18, defect 7: four
// n = 16 x 1,000-token requests with logprobs = 20 counted as four of 256 and pushed the router's
// memory from 126 to 424 MB; a queued request waited forever.)
//
// Waiting requests queue per priority class (high, normal, low: the x-priority header), FIFO
// within a class, and the classes share admissions by weight (stride scheduling): while all
// three wait, of every 4 + 2 + 1 admissions (default weights) 4 go to high, 2 to normal and 1 to
// low, so low is slowed, never starved. A class that was idle rejoins at the current virtual time
// (it banks no credit for the time it had nothing queued).
import { QueueFullError, QueueTimeoutError } from '../errors.ts';

export const priorityClasses = ['high', 'normal', 'low'] as const;
export type PriorityClass = (typeof priorityClasses)[number];

export function isPriorityClass(name: string): name is PriorityClass {
  return (priorityClasses as readonly string[]).includes(name);
}

/** The class an x-priority header names (high, normal, low; anything else, or none: normal). */
export function priorityOf(header: string | string[] | undefined): PriorityClass {
  const value = (Array.isArray(header) ? header[0] : header)?.trim().toLowerCase() ?? '';
  return isPriorityClass(value) ? value : 'normal';
}

export interface AdmissionParams {
  maxConcurrent: number;
  maxQueued: number;
  /** Retry-After given to refused requests. */
  retryAfterMs: number;
  /** Cost units (requestCost) of the requests running at once. */
  maxRunningCost: number;
  /** Longest wait in the queue. */
  queueTimeoutMs: number;
  /** Share of admissions of each class while several wait (positive). */
  priorityWeights: Record<PriorityClass, number>;
}

export const defaultAdmissionParams: AdmissionParams = {
  maxConcurrent: 256,
  maxQueued: 1024,
  retryAfterMs: 1000,
  maxRunningCost: 2_000_000,
  queueTimeoutMs: 30_000,
  priorityWeights: { high: 4, normal: 2, low: 1 },
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

/** One class's waiters and its place in the stride schedule. */
interface ClassQueue {
  waiting: Waiter[];
  /** Virtual time of its next admission (the class with the lowest goes first). */
  pass: number;
  /** 1 / weight: how far each admission moves its pass. */
  stride: number;
  numAdmitted: number;
}

/** Per class: waiting now and admitted so far (GET /debug/routing shows them with each decision). */
export type AdmissionClassStats = Record<PriorityClass, { numQueued: number; numAdmitted: number }>;

export class AdmissionQueue {
  readonly #params: AdmissionParams;
  #numRunning = 0;
  #runningCost = 0;
  #numWaiting = 0;
  /** The virtual time of the last admission from a queue. */
  #virtualTime = 0;
  readonly #classes: Record<PriorityClass, ClassQueue>;

  constructor(params: AdmissionParams = defaultAdmissionParams) {
    this.#params = params;
    const queue = (weight: number): ClassQueue => ({
      waiting: [],
      pass: 0,
      stride: 1 / weight,
      numAdmitted: 0,
    });
    const weights = params.priorityWeights;
    this.#classes = { high: queue(weights.high), normal: queue(weights.normal), low: queue(weights.low) };
  }

  get numRunning(): number {
    return this.#numRunning;
  }

  get runningCost(): number {
    return this.#runningCost;
  }

  get numQueued(): number {
    return this.#numWaiting;
  }

  stats(): AdmissionClassStats {
    const of = (c: ClassQueue) => ({ numQueued: c.waiting.length, numAdmitted: c.numAdmitted });
    return { high: of(this.#classes.high), normal: of(this.#classes.normal), low: of(this.#classes.low) };
  }

  /**
   * Resolves with a release function once the request may run. Aborting the signal leaves the
   * queue; so does its deadline (QueueTimeoutError).
   */
  admit(signal: AbortSignal, cost = 1, priority: PriorityClass = 'normal'): Promise<() => void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    const queue = this.#classes[priority];
    if (this.#numWaiting === 0 && this.#fits(cost)) {
      queue.numAdmitted++;
      return Promise.resolve(this.#start(cost));
    }
    if (this.#numWaiting >= this.#params.maxQueued) {
      return Promise.reject(
        new QueueFullError(`the router's queue is full (${this.#params.maxQueued} waiting); retry later`, {
          retryAfterMs: this.#params.retryAfterMs,
        }),
      );
    }
    return new Promise((resolve, reject) => {
      const leave = (error: unknown): void => {
        const index = queue.waiting.indexOf(waiter);
        if (index === -1) return;
        queue.waiting.splice(index, 1);
        this.#numWaiting--;
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
      // An idle class rejoins at the current virtual time: no credit banked while it was empty.
      if (queue.waiting.length === 0) queue.pass = Math.max(queue.pass, this.#virtualTime);
      queue.waiting.push(waiter);
      this.#numWaiting++;
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

  /** The class whose turn it is: the lowest pass among those waiting (ties: the higher class). */
  #nextClass(): ClassQueue | null {
    let next: ClassQueue | null = null;
    for (const name of priorityClasses) {
      const queue = this.#classes[name];
      if (queue.waiting.length > 0 && (next === null || queue.pass < next.pass)) next = queue;
    }
    return next;
  }

  /**
   * Admits waiters while the head of the class whose turn it is fits (a costly head waits, and so
   * do the rest: skipping it would starve large requests).
   */
  #admitWaiting(): void {
    for (let queue = this.#nextClass(); queue !== null; queue = this.#nextClass()) {
      if (!this.#fits(queue.waiting[0]!.cost)) return;
      const next = queue.waiting.shift()!;
      this.#numWaiting--;
      this.#virtualTime = queue.pass;
      queue.pass += queue.stride;
      queue.numAdmitted++;
      next.resolve(this.#start(next.cost));
    }
  }
}
