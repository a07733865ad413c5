// Worker membership: WorkerAnnounce on NATS (join, heartbeat, leave) plus the Redis lease
// (common's WorkerLease) renewed on every heartbeat, so a worker that dies without a word disappears within
// the lease TTL. Also publishes the load report every second and answers block-dump requests.
import { type Logger, type NatsConnection, subjects, type WorkerLease } from '@tandem/common';
import {
  AnnounceKind,
  BlockDumpChunkSchema,
  BlockDumpRequestSchema,
  create,
  fromBinary,
  type KvLayoutSchema,
  type MessageInitShape,
  Role,
  toBinary,
  WorkerAnnounceSchema,
  WorkerLoadSchema,
} from '@tandem/proto';
import { toDumpChunks, toWireLoad } from './convert.ts';
import type { WorkerEngine } from './engine-port.ts';
import type { WorkerRoleName } from './role.ts';
import type { StepCostFit } from './step-cost.ts';

export interface AnnouncerOptions {
  nc: NatsConnection;
  /** Null without Redis. */
  lease: WorkerLease | null;
  engine: WorkerEngine;
  workerId: string;
  grpcAddress: string;
  /** host:port of the Prometheus endpoint, or null. */
  metricsAddress: string | null;
  modelName: string;
  kvLayout: MessageInitShape<typeof KvLayoutSchema>;
  startedAtMs: number;
  /** The last KV-event seq published (KvEventPublisher.publishedSeq). */
  kvSeq: () => number;
  heartbeatIntervalMs: number;
  leaseTtlMs: number;
  loadIntervalMs: number;
  logger: Logger;
  role: WorkerRoleName;
  /** Decode role: its kvtransfer receiver's host:port ('' otherwise). */
  kvAddress: string;
  /** The worker's fitted step costs, sent with each load report (null before enough steps). */
  stepCost?: () => StepCostFit | null;
}

export class Announcer {
  readonly #options: AnnouncerOptions;
  #heartbeatTimer: NodeJS.Timeout | null = null;
  #loadTimer: NodeJS.Timeout | null = null;
  #dumpSubscription: ReturnType<NatsConnection['subscribe']> | null = null;

  constructor(options: AnnouncerOptions) {
    this.#options = options;
  }

  /** Answers dump requests, then announces JOIN and starts the heartbeat and load timers. */
  async start(): Promise<void> {
    const { nc, workerId } = this.#options;
    this.#dumpSubscription = nc.subscribe(subjects.kvDump(workerId), {
      callback: (error, message) => {
        if (error !== null) return;
        const request = fromBinary(BlockDumpRequestSchema, message.data);
        const dump = this.#options.engine.dumpBlocks();
        const chunks = toDumpChunks(workerId, this.#options.startedAtMs, dump, request.maxBlocksPerChunk);
        for (const chunk of chunks)
          message.respond(toBinary(BlockDumpChunkSchema, create(BlockDumpChunkSchema, chunk)));
        this.#options.logger.debug('block dump sent', { seq: dump.seq, numBlocks: dump.blocks.length });
      },
    });
    await nc.flush();
    await this.#options.lease?.renew();
    this.#announce(AnnounceKind.JOIN);
    this.#heartbeatTimer = setInterval(() => {
      this.#announce(AnnounceKind.HEARTBEAT);
      this.#options.lease
        ?.renew()
        .catch((error: unknown) => this.#options.logger.warn('lease renewal failed', { error }));
    }, this.#options.heartbeatIntervalMs);
    this.#loadTimer = setInterval(() => this.publishLoad(), this.#options.loadIntervalMs);
    this.#heartbeatTimer.unref();
    this.#loadTimer.unref();
  }

  publishLoad(): void {
    const { nc, workerId } = this.#options;
    const message = create(WorkerLoadSchema, {
      workerId,
      timestampMs: BigInt(Date.now()),
      load: toWireLoad(this.#options.engine.load(), this.#options.stepCost?.() ?? null),
      kvSeq: BigInt(this.#options.kvSeq()),
      startedAtMs: BigInt(this.#options.startedAtMs),
    });
    try {
      nc.publish(subjects.load(workerId), toBinary(WorkerLoadSchema, message));
    } catch (error) {
      this.#options.logger.warn('load report publish failed', { error });
    }
  }

  /** Announces LEAVE, deletes the lease, stops timers and the dump responder. */
  async stop(): Promise<void> {
    if (this.#heartbeatTimer !== null) clearInterval(this.#heartbeatTimer);
    if (this.#loadTimer !== null) clearInterval(this.#loadTimer);
    this.#heartbeatTimer = null;
    this.#loadTimer = null;
    this.#dumpSubscription?.unsubscribe();
    this.#dumpSubscription = null;
    this.#announce(AnnounceKind.LEAVE);
    try {
      await this.#options.lease?.release();
      await this.#options.nc.flush();
    } catch (error) {
      this.#options.logger.warn('deregistration incomplete', { error });
    }
  }

  #announce(kind: AnnounceKind): void {
    const o = this.#options;
    const message = create(WorkerAnnounceSchema, {
      kind,
      workerId: o.workerId,
      grpcAddress: o.grpcAddress,
      metricsAddress: o.metricsAddress ?? '',
      modelName: o.modelName,
      role: { unified: Role.UNIFIED, prefill: Role.PREFILL, decode: Role.DECODE }[o.role],
      kvLayout: o.kvLayout,
      startedAtMs: BigInt(o.startedAtMs),
      leaseTtlMs: o.leaseTtlMs,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      kvSeq: BigInt(o.kvSeq()),
      kvAddress: o.kvAddress,
    });
    try {
      o.nc.publish(subjects.announce, toBinary(WorkerAnnounceSchema, message));
    } catch (error) {
      o.logger.warn('announce failed', { error, kind });
    }
  }
}
