// NATS subjects and Redis keys of the events plane (docs/protocol.md is the reference).
// Worker ids are single NATS tokens: [A-Za-z0-9_-]+.
import { InvalidArgumentError } from './errors.ts';

const workerIdPattern = /^[A-Za-z0-9_-]+$/;

export function assertWorkerId(workerId: string): void {
  if (!workerIdPattern.test(workerId)) {
    throw new InvalidArgumentError(`worker id '${workerId}' must match ${workerIdPattern}`, {
      param: 'workerId',
    });
  }
}

export const subjects = {
  /** WorkerAnnounce (join, heartbeat, leave) from every worker. */
  announce: 'tandem.workers.announce',
  /** WorkerLoad from one worker, every second. */
  load: (workerId: string): string => `tandem.workers.${workerId}.load`,
  /** WorkerLoad from every worker (subscription). */
  loadAll: 'tandem.workers.*.load',
  /** KvEventBatch from one worker. */
  kvEvents: (workerId: string): string => `tandem.kv.${workerId}.events`,
  /** KvEventBatch from every worker (subscription). */
  kvEventsAll: 'tandem.kv.*.events',
  /** BlockDumpRequest to one worker (request/reply, chunked replies). */
  kvDump: (workerId: string): string => `tandem.kv.${workerId}.dump`,
} as const;

/** The worker id inside a per-worker subject (tandem.workers.<id>.load, tandem.kv.<id>.events). */
export function workerIdOfSubject(subject: string): string | null {
  const parts = subject.split('.');
  return parts.length === 4 && parts[2] !== undefined ? parts[2] : null;
}

export const redisKeys = {
  /** The worker's lease: JSON { workerId, grpcAddress, modelName, role }, PX = lease TTL. */
  workerLease: (workerId: string): string => `tandem:worker:${workerId}`,
  /** SCAN pattern over every lease. */
  workerLeasePattern: 'tandem:worker:*',
} as const;
