// Worker leases in Redis (`tandem:worker:<id>`, set by each worker's heartbeat): how a process that
// starts after its workers finds them, and how a silent worker is told apart from a dead one.
import type { Redis } from '../redis.ts';
import { redisKeys } from '../subjects.ts';
import type { DiscoveredRole } from './worker-directory.ts';

/** What a worker writes into its lease. */
export interface LeaseRecord {
  workerId: string;
  grpcAddress: string;
  modelName: string;
  role: DiscoveredRole;
  startedAtMs: number;
  /** host:port of its Prometheus endpoint, or null. */
  metricsAddress: string | null;
}

const workerIdField = /^tandem:worker:(.+)$/;

/** Every lease in Redis that parses, with its remaining TTL. */
export async function readLeases(redis: Redis): Promise<{ lease: LeaseRecord; ttlMs: number }[]> {
  const found: { lease: LeaseRecord; ttlMs: number }[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', redisKeys.workerLeasePattern, 'COUNT', 200);
    cursor = next;
    for (const key of keys) {
      const workerId = workerIdField.exec(key)?.[1];
      if (workerId === undefined) continue;
      const [value, ttlMs] = await Promise.all([redis.get(key), redis.pttl(key)]);
      const lease = value === null ? null : parseLease(value);
      if (lease !== null && lease.workerId === workerId) found.push({ lease, ttlMs });
    }
  } while (cursor !== '0');
  return found;
}

/** Whether a worker's lease still stands. */
export async function leaseAlive(redis: Redis, workerId: string): Promise<boolean> {
  return (await redis.exists(redisKeys.workerLease(workerId))) === 1;
}

function parseLease(value: string): LeaseRecord | null {
  let parsed: Partial<Record<keyof LeaseRecord, unknown>>;
  try {
    parsed = JSON.parse(value) as typeof parsed;
  } catch {
    return null;
  }
  const { workerId, grpcAddress, modelName, role, startedAtMs, metricsAddress } = parsed;
  if (typeof workerId !== 'string' || typeof grpcAddress !== 'string' || typeof modelName !== 'string')
    return null;
  if (role !== 'unified' && role !== 'decode' && role !== 'prefill') return null;
  return {
    workerId,
    grpcAddress,
    modelName,
    role,
    startedAtMs: typeof startedAtMs === 'number' ? startedAtMs : 0,
    metricsAddress: typeof metricsAddress === 'string' && metricsAddress !== '' ? metricsAddress : null,
  };
}

/** A worker's own lease: renewed on every heartbeat, deleted on a clean leave. */
export class WorkerLease {
  readonly #redis: Redis;
  readonly #record: LeaseRecord;
  readonly #ttlMs: number;

  constructor(redis: Redis, record: LeaseRecord, ttlMs: number) {
    this.#redis = redis;
    this.#record = record;
    this.#ttlMs = ttlMs;
  }

  /** Sets (or extends) the lease for another TTL. */
  async renew(): Promise<void> {
    await this.#redis.set(
      redisKeys.workerLease(this.#record.workerId),
      JSON.stringify(this.#record),
      'PX',
      this.#ttlMs,
    );
  }

  /** Deletes it (a clean leave). */
  async release(): Promise<void> {
    await this.#redis.del(redisKeys.workerLease(this.#record.workerId));
  }
}
