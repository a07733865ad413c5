// The last N routing decisions by request id (GET /debug/routing/{request_id}).
import type { PrefillDecision } from '../policy/prefill-policy.ts';
import type { Decision } from '../policy/types.ts';
import type { PriorityClass } from './admission.ts';

/**
 * Why a decision was made: a request's first try, a retry after a failure, a hedge twin of a silent
 * attempt, or the first try of a continuation after a worker failed mid-stream.
 */
export type DecisionReason = 'first' | 'retry' | 'hedge' | 'failover';

/** How the request got in: its priority class and how long it waited for admission. */
export interface AdmissionRecord {
  priority: PriorityClass;
  queuedMs: number;
}

export interface DecisionRecord extends Decision {
  admission?: AdmissionRecord;
  /** For a decode worker: its prefill worker (candidates, cost terms) or local; else null. */
  prefill: PrefillDecision | null;
  atMs: number;
  /** 1 for the first try; retries, hedges and failovers add records (numbered per prompt run). */
  attempt: number;
  reason: DecisionReason;
}

export class DecisionLog {
  readonly #capacity: number;
  readonly #byRequest = new Map<string, DecisionRecord[]>();

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  add(record: DecisionRecord): void {
    const existing = this.#byRequest.get(record.requestId);
    if (existing !== undefined) {
      existing.push(record);
      return;
    }
    this.#byRequest.set(record.requestId, [record]);
    // Map iteration order is insertion order: the first key is the oldest.
    if (this.#byRequest.size > this.#capacity) {
      const oldest = this.#byRequest.keys().next().value;
      if (oldest !== undefined) this.#byRequest.delete(oldest);
    }
  }

  get(requestId: string): DecisionRecord[] | null {
    return this.#byRequest.get(requestId) ?? null;
  }

  get size(): number {
    return this.#byRequest.size;
  }
}
