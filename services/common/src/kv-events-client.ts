// The subscriber side of a worker's KV events: a mirror of its cached block set that applies event
// batches in sequence order, says when it saw a gap (or a restarted worker), and is repaired from a
// block dump fetched over NATS request/reply. The router's KV index and the worker's tests use it.
import { createInbox, type NatsConnection } from '@nats-io/nats-core';
import {
  type BlockDumpChunk,
  BlockDumpChunkSchema,
  BlockDumpRequestSchema,
  create,
  fromBinary,
  type KvEventBatch,
  KvEventBatchSchema,
  toBinary,
  type WorkerLoad,
  WorkerLoadSchema,
} from '@tandem/proto';
import { TimeoutError } from './errors.ts';
import { subjects } from './subjects.ts';

export interface MirroredBlock {
  namespace: string;
  hash: bigint;
  parentHash: bigint | null;
}

/** What applying a batch did. 'gap': events were lost or the worker restarted; resync from a dump. */
export type ApplyResult =
  | { type: 'applied'; numEvents: number }
  | { type: 'gap'; expectedSeq: bigint; receivedSeq: bigint; restarted: boolean };

export interface BlockDump {
  workerId: string;
  startedAtMs: bigint;
  seq: bigint;
  blocks: MirroredBlock[];
}

function blockKey(namespace: string, hash: bigint): string {
  return `${namespace}\u0000${hash}`;
}

/** One worker's cached block set as its events describe it. */
export class KvBlockMirror {
  readonly workerId: string;
  /** The last sequence number applied (0n: none; null: never synced). */
  seq: bigint | null = null;
  startedAtMs: bigint | null = null;
  readonly #blocks = new Map<string, MirroredBlock>();

  constructor(workerId: string) {
    this.workerId = workerId;
  }

  get size(): number {
    return this.#blocks.size;
  }

  blocks(): MirroredBlock[] {
    return [...this.#blocks.values()];
  }

  has(namespace: string, hash: bigint): boolean {
    return this.#blocks.has(blockKey(namespace, hash));
  }

  /** Replaces the state with a dump; later batches continue from dump.seq. */
  reset(dump: BlockDump): void {
    this.#blocks.clear();
    for (const block of dump.blocks) this.#blocks.set(blockKey(block.namespace, block.hash), block);
    this.seq = dump.seq;
    this.startedAtMs = dump.startedAtMs;
  }

  /**
   * Applies events in order. Events at or below the current seq are old (from before a dump) and
   * skipped. Stops at the first gap and applies nothing after it.
   */
  apply(batch: KvEventBatch): ApplyResult {
    if (this.startedAtMs !== null && batch.startedAtMs !== this.startedAtMs) {
      const first = batch.events[0]?.seq ?? 0n;
      return { type: 'gap', expectedSeq: (this.seq ?? 0n) + 1n, receivedSeq: first, restarted: true };
    }
    if (this.startedAtMs === null) {
      // Never synced: only a sequence that starts at 1 can be followed without a dump.
      const first = batch.events[0]?.seq ?? 1n;
      if (first !== 1n) return { type: 'gap', expectedSeq: 1n, receivedSeq: first, restarted: false };
      this.startedAtMs = batch.startedAtMs;
      this.seq = 0n;
    }
    let numEvents = 0;
    for (const event of batch.events) {
      const current = this.seq ?? 0n;
      if (event.seq <= current) continue;
      if (event.seq !== current + 1n) {
        return { type: 'gap', expectedSeq: current + 1n, receivedSeq: event.seq, restarted: false };
      }
      switch (event.event.case) {
        case 'stored':
          for (const block of event.event.value.blocks) {
            const namespace = event.event.value.namespace;
            this.#blocks.set(blockKey(namespace, block.hash), {
              namespace,
              hash: block.hash,
              parentHash: block.parentHash ?? null,
            });
          }
          break;
        case 'removed':
          for (const hash of event.event.value.hashes) {
            this.#blocks.delete(blockKey(event.event.value.namespace, hash));
          }
          break;
        case 'cleared':
          this.#blocks.clear();
          break;
        case undefined:
          break;
      }
      this.seq = event.seq;
      numEvents++;
    }
    return { type: 'applied', numEvents };
  }

  /** True when a load report's kv_seq shows events this mirror never received. */
  isBehind(reportedSeq: bigint, reportedStartedAtMs: bigint): boolean {
    if (this.startedAtMs !== null && reportedStartedAtMs !== this.startedAtMs) return true;
    return this.seq === null ? reportedSeq > 0n : reportedSeq > this.seq;
  }
}

export interface DumpRequestOptions {
  timeoutMs?: number;
  maxBlocksPerChunk?: number;
}

/** Asks a worker for its cached block set over NATS (tandem.kv.<id>.dump) and joins the chunks. */
export async function requestBlockDump(
  nc: NatsConnection,
  workerId: string,
  options: DumpRequestOptions = {},
): Promise<BlockDump> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const inbox = createInbox();
  const subscription = nc.subscribe(inbox, { timeout: timeoutMs });
  const request = create(BlockDumpRequestSchema, { maxBlocksPerChunk: options.maxBlocksPerChunk ?? 0 });
  nc.publish(subjects.kvDump(workerId), toBinary(BlockDumpRequestSchema, request), { reply: inbox });
  const chunks: BlockDumpChunk[] = [];
  let numReceived = 0;
  try {
    for await (const message of subscription) {
      const chunk = fromBinary(BlockDumpChunkSchema, message.data);
      if (chunks[chunk.chunkIndex] === undefined) numReceived++;
      chunks[chunk.chunkIndex] = chunk;
      if (numReceived === chunk.numChunks) break;
    }
  } catch (cause) {
    throw new TimeoutError(`no complete block dump from worker ${workerId} within ${timeoutMs} ms`, {
      cause,
    });
  } finally {
    subscription.unsubscribe();
  }
  return joinDumpChunks(workerId, chunks);
}

/** One dump from its chunks (all from the same snapshot). */
export function joinDumpChunks(workerId: string, chunks: readonly BlockDumpChunk[]): BlockDump {
  const first = chunks[0];
  if (first === undefined) throw new TimeoutError(`empty block dump from worker ${workerId}`);
  const blocks: MirroredBlock[] = [];
  for (const chunk of chunks) {
    for (const block of chunk.blocks) {
      blocks.push({ namespace: block.namespace, hash: block.hash, parentHash: block.parentHash ?? null });
    }
  }
  return { workerId, startedAtMs: first.startedAtMs, seq: first.seq, blocks };
}

export interface KvEventFollowerOptions {
  /** Called after each gap is noticed (before the resync). */
  onGap?: (gap: Extract<ApplyResult, { type: 'gap' }>) => void;
  dumpTimeoutMs?: number;
}

/**
 * Keeps a KvBlockMirror of one worker current: applies its event batches, watches its load
 * reports for a kv_seq the mirror never reached (lost tail), and on any gap fetches a dump,
 * resets, and re-applies the batches that arrived meanwhile. start() subscribes on NATS; tests
 * may instead feed handle() / handleLoad() themselves.
 */
export class KvEventFollower {
  readonly mirror: KvBlockMirror;
  readonly gaps: Extract<ApplyResult, { type: 'gap' }>[] = [];
  numResyncs = 0;
  readonly #nc: NatsConnection;
  readonly #options: KvEventFollowerOptions;
  #queue: KvEventBatch[] | null = null; // non-null while a resync is in flight
  #subscriptions: { unsubscribe(): void }[] = [];
  #resyncDone: Promise<void> = Promise.resolve();

  constructor(nc: NatsConnection, workerId: string, options: KvEventFollowerOptions = {}) {
    this.#nc = nc;
    this.mirror = new KvBlockMirror(workerId);
    this.#options = options;
  }

  /** Subscribes to the worker's events and load reports. */
  async start(): Promise<void> {
    const workerId = this.mirror.workerId;
    this.#subscriptions.push(
      this.#nc.subscribe(subjects.kvEvents(workerId), {
        callback: (error, message) => {
          if (error === null) this.handle(fromBinary(KvEventBatchSchema, message.data));
        },
      }),
      this.#nc.subscribe(subjects.load(workerId), {
        callback: (error, message) => {
          if (error === null) this.handleLoad(fromBinary(WorkerLoadSchema, message.data));
        },
      }),
    );
    await this.#nc.flush();
  }

  stop(): void {
    for (const subscription of this.#subscriptions) subscription.unsubscribe();
    this.#subscriptions = [];
  }

  /** Resolves when no resync is in flight. */
  settled(): Promise<void> {
    return this.#resyncDone;
  }

  handle(batch: KvEventBatch): void {
    if (this.#queue !== null) {
      this.#queue.push(batch);
      return;
    }
    const result = this.mirror.apply(batch);
    if (result.type === 'gap') this.#startResync(result, [batch]);
  }

  handleLoad(load: WorkerLoad): void {
    if (this.#queue !== null || !this.mirror.isBehind(load.kvSeq, load.startedAtMs)) return;
    const expectedSeq = (this.mirror.seq ?? 0n) + 1n;
    const restarted = this.mirror.startedAtMs !== null && this.mirror.startedAtMs !== load.startedAtMs;
    this.#startResync({ type: 'gap', expectedSeq, receivedSeq: load.kvSeq, restarted }, []);
  }

  #startResync(gap: Extract<ApplyResult, { type: 'gap' }>, pending: KvEventBatch[]): void {
    this.gaps.push(gap);
    this.#options.onGap?.(gap);
    this.#queue = pending;
    this.#resyncDone = this.#resync();
  }

  async #resync(): Promise<void> {
    for (;;) {
      try {
        const dump = await requestBlockDump(this.#nc, this.mirror.workerId, {
          timeoutMs: this.#options.dumpTimeoutMs ?? 5000,
        });
        this.mirror.reset(dump);
        this.numResyncs++;
      } catch {
        // The worker may be gone or busy; the next batch or load report tries again.
        this.#queue = null;
        this.mirror.seq = null;
        this.mirror.startedAtMs = null;
        return;
      }
      const queued = this.#queue ?? [];
      this.#queue = null;
      let gapAgain: Extract<ApplyResult, { type: 'gap' }> | null = null;
      for (let i = 0; i < queued.length; i++) {
        const result = this.mirror.apply(queued[i]!);
        if (result.type === 'gap') {
          gapAgain = result;
          this.#queue = queued.slice(i);
          break;
        }
      }
      if (gapAgain === null) return;
      this.gaps.push(gapAgain);
      this.#options.onGap?.(gapAgain);
    }
  }
}
