// Session affinity: requests with one session key (x-session-id / x-routing-key header, or the
// OpenAI `user` field) stay on the worker that served the session last while it is a candidate
// (registered, its circuit closed, heard from) and not overloaded; then the policy chooses freely
// and the session moves with that choice. The table is this replica's (bounded, least recently
// used first out); a session served by another replica starts anew here.
import type { CandidateFilter, SessionOutcome, WorkerView } from './types.ts';

export interface SessionParams {
  /** Sessions remembered (least recently used forgotten first). */
  capacity: number;
  /** A session idle this long is forgotten (its worker's cache has likely moved on). */
  ttlMs: number;
}

export const defaultSessionParams: SessionParams = { capacity: 100_000, ttlMs: 30 * 60_000 };

interface Entry {
  workerId: string;
  atMs: number;
}

export class SessionTable {
  readonly #params: SessionParams;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(params: SessionParams = defaultSessionParams, now: () => number = Date.now) {
    this.#params = params;
    this.#now = now;
  }

  /** The worker that served the session last, or null (unknown or idle past the TTL). */
  workerOf(key: string): string | null {
    const entry = this.#entries.get(key);
    if (entry === undefined) return null;
    if (this.#now() - entry.atMs > this.#params.ttlMs) {
      this.#entries.delete(key);
      return null;
    }
    return entry.workerId;
  }

  /** The session's request went to `workerId`. */
  remember(key: string, workerId: string): void {
    // Re-inserting moves the key to the end: the first key is the least recently used.
    this.#entries.delete(key);
    this.#entries.set(key, { workerId, atMs: this.#now() });
    if (this.#entries.size > this.#params.capacity) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}

/**
 * Keeps a session on its worker: every other candidate is excluded, unless the session's worker
 * is gone from the candidates or `overloaded` says it is (then nobody is, and the outcome says why).
 */
export function sessionAffinityFilter(
  table: SessionTable,
  overloaded: (worker: WorkerView, candidates: readonly WorkerView[]) => string | null,
): CandidateFilter {
  return {
    name: 'session',
    inputs: ['routingKey', 'load', 'inflight'],
    exclude: (request, candidates) => {
      const excluded = new Map<string, string>();
      if (request.routingKey === null) return excluded;
      const workerId = table.workerOf(request.routingKey);
      const sticky = candidates.find((worker) => worker.workerId === workerId);
      if (sticky === undefined || overloaded(sticky, candidates) !== null) return excluded;
      for (const worker of candidates)
        if (worker !== sticky) excluded.set(worker.workerId, `session sticks to ${sticky.workerId}`);
      return excluded;
    },
  };
}

/** What happened to the session of a decided request (for the decision record). */
export function sessionOutcome(
  key: string,
  previousWorkerId: string | null,
  chosenWorkerId: string | null,
  candidates: readonly WorkerView[],
  overloaded: (worker: WorkerView, candidates: readonly WorkerView[]) => string | null,
  excludedBefore: string | null,
): SessionOutcome {
  if (previousWorkerId === null) return { key, previousWorkerId, outcome: 'new', reason: null };
  if (chosenWorkerId === previousWorkerId) return { key, previousWorkerId, outcome: 'sticky', reason: null };
  const previous = candidates.find((worker) => worker.workerId === previousWorkerId);
  const reason =
    previous === undefined
      ? `${previousWorkerId} is not a candidate (gone, circuit open, silent or already tried)`
      : (excludedBefore ?? overloaded(previous, candidates) ?? 'not chosen');
  return { key, previousWorkerId, outcome: 'moved', reason };
}

/** Longest session key kept (a longer one is cut: keys are identifiers, not payloads). */
const maxKeyLength = 256;

/** The request's session key: the header's, else the OpenAI body's `user` string, else null. */
export function sessionKeyOf(headerKey: string | null, body: unknown): string | null {
  if (headerKey !== null && headerKey !== '') return headerKey.slice(0, maxKeyLength);
  if (typeof body !== 'object' || body === null) return null;
  const user = (body as { user?: unknown }).user;
  return typeof user === 'string' && user !== '' ? `user:${user.slice(0, maxKeyLength)}` : null;
}
