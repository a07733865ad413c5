// Feeds the workers' KV events (NATS, fire-and-forget) into the KvIndex in sequence order, per
// worker. A router that starts late, misses an event (sequence gap) or sees a worker restart
// (new incarnation) asks that worker for a block dump, buffers events meanwhile, then replays
// the ones newer than the dump.
import type { BlockDump, Logger } from '@tandem/common';
import type { KvEventBatch } from '@tandem/proto';
import { toBlockKeys } from './block-keys.ts';
import type { KvIndex } from './kv-index.ts';

interface WorkerSync {
  startedAtMs: bigint | null;
  /** Last applied sequence number (null: not synced). */
  seq: bigint | null;
  resyncing: boolean;
  buffered: KvEventBatch[];
}

export type DumpFetcher = (workerId: string) => Promise<BlockDump>;

export class KvEventSync {
  readonly #index: KvIndex;
  readonly #fetchDump: DumpFetcher;
  readonly #logger: Logger;
  readonly #workers = new Map<string, WorkerSync>();
  #numResyncs = 0;
  #numEvents = 0;

  constructor(index: KvIndex, fetchDump: DumpFetcher, logger: Logger) {
    this.#index = index;
    this.#fetchDump = fetchDump;
    this.#logger = logger;
  }

  get numResyncs(): number {
    return this.#numResyncs;
  }

  /** Workers whose event sequence is followed (each forgotten when it leaves). */
  get numWorkers(): number {
    return this.#workers.size;
  }

  get numEvents(): number {
    return this.#numEvents;
  }

  /** Whether the worker's state is known up to some sequence number. */
  isSynced(workerId: string): boolean {
    const sync = this.#workers.get(workerId);
    return sync !== undefined && sync.seq !== null && !sync.resyncing;
  }

  seqOf(workerId: string): bigint | null {
    return this.#workers.get(workerId)?.seq ?? null;
  }

  forget(workerId: string): void {
    this.#workers.delete(workerId);
    this.#index.removeWorker(workerId);
  }

  onBatch(batch: KvEventBatch): void {
    const sync = this.#stateOf(batch.workerId);
    if (sync.resyncing) {
      sync.buffered.push(batch);
      return;
    }
    const firstSeq = batch.events[0]?.seq ?? null;
    if (firstSeq === null) return;
    if (sync.startedAtMs !== null && batch.startedAtMs !== sync.startedAtMs) {
      // A new incarnation starts with an empty cache and seq 1.
      this.#index.cleared(batch.workerId);
      sync.startedAtMs = null;
      sync.seq = null;
    }
    if (sync.startedAtMs === null) {
      if (firstSeq !== 1n) {
        this.#resync(batch.workerId, sync, batch, `joined at seq ${firstSeq}`);
        return;
      }
      sync.startedAtMs = batch.startedAtMs;
      sync.seq = 0n;
    }
    this.#apply(batch, sync);
  }

  /** A load report or announcement says where the worker's event sequence is. */
  onWorkerSeq(workerId: string, kvSeq: bigint, startedAtMs: bigint): void {
    const sync = this.#stateOf(workerId);
    if (sync.resyncing) return;
    if (kvSeq === 0n) {
      // No events yet in that incarnation: nothing to fetch.
      if (sync.startedAtMs !== startedAtMs) {
        if (sync.startedAtMs !== null) this.#index.cleared(workerId);
        sync.startedAtMs = startedAtMs;
        sync.seq = 0n;
      }
      return;
    }
    if (sync.startedAtMs !== startedAtMs || sync.seq === null || kvSeq > sync.seq) {
      this.#resync(workerId, sync, null, `behind: worker at seq ${kvSeq}, index at ${sync.seq ?? 'none'}`);
    }
  }

  #stateOf(workerId: string): WorkerSync {
    let sync = this.#workers.get(workerId);
    if (sync === undefined) {
      sync = { startedAtMs: null, seq: null, resyncing: false, buffered: [] };
      this.#workers.set(workerId, sync);
    }
    return sync;
  }

  #apply(batch: KvEventBatch, sync: WorkerSync): void {
    for (const event of batch.events) {
      const current = sync.seq ?? 0n;
      if (event.seq <= current) continue;
      if (event.seq !== current + 1n) {
        this.#resync(batch.workerId, sync, batch, `gap: expected seq ${current + 1n}, got ${event.seq}`);
        return;
      }
      const body = event.event;
      if (body.case === 'stored') {
        this.#index.stored(batch.workerId, toBlockKeys(body.value.blocks.map((block) => block.hash)));
      } else if (body.case === 'removed') {
        this.#index.removed(batch.workerId, toBlockKeys(body.value.hashes));
      } else if (body.case === 'cleared') {
        this.#index.cleared(batch.workerId);
      }
      sync.seq = event.seq;
      this.#numEvents++;
    }
  }

  #resync(workerId: string, sync: WorkerSync, pending: KvEventBatch | null, reason: string): void {
    sync.resyncing = true;
    if (pending !== null) sync.buffered.push(pending);
    this.#numResyncs++;
    this.#logger.info('resyncing KV index from a block dump', { workerId, reason });
    this.#fetchDump(workerId).then(
      (dump) => {
        if (this.#workers.get(workerId) !== sync) return; // forgotten meanwhile
        this.#index.cleared(workerId);
        this.#index.stored(workerId, toBlockKeys(dump.blocks.map((block) => block.hash)));
        sync.startedAtMs = dump.startedAtMs;
        sync.seq = dump.seq;
        sync.resyncing = false;
        const buffered = sync.buffered;
        sync.buffered = [];
        for (const batch of buffered) this.onBatch(batch);
        this.#logger.debug('KV index resynced', { workerId, seq: dump.seq, numBlocks: dump.blocks.length });
      },
      (error: unknown) => {
        this.#logger.warn('block dump failed; will retry on the next load report', { workerId, error });
        sync.resyncing = false;
        sync.buffered = [];
        sync.startedAtMs = null;
        sync.seq = null;
      },
    );
  }
}
