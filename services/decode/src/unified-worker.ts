// A unified worker: the Worker gRPC service on one engine, plus (when NATS is configured) KV events,
// load reports, announcements and dumps, and (when Redis is configured) a lease. close() is the
// SIGTERM path: stop taking requests, leave, let running requests finish for a grace period, then
// abort the rest and release everything.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  addGrpcService,
  assertWorkerId,
  bindGrpcServer,
  connectNats,
  connectRedis,
  grpc,
  type Logger,
  type NatsConnection,
  type Redis,
  shutdownGrpcServer,
} from '@tandem/common';
import { Worker } from '@tandem/proto';
import { Announcer } from './announcer.ts';
import { toWireKvLayout } from './convert.ts';
import type { ModelFacts, WorkerEngine } from './engine-port.ts';
import { KvEventPublisher } from './kv-event-publisher.ts';
import type { RoleExtras } from './pd/roles.ts';
import { WorkerService } from './worker-service.ts';

export interface UnifiedWorkerOptions {
  engine: WorkerEngine;
  model: ModelFacts;
  /** 'cpu' or 'cuda:N' (reported in Info). */
  device: string;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** host:port routers should dial (default host:boundPort, the machine's name for 0.0.0.0). */
  advertiseAddress?: string | null;
  /** Default: <hostname>-<port>-<random hex>. */
  workerId?: string | null;
  natsUrl: string | null;
  redisUrl: string | null;
  heartbeatIntervalMs?: number;
  leaseTtlMs?: number;
  loadIntervalMs?: number;
  logger: Logger;
  /** The prefill / decode role's additions (pd/roles.ts); null or absent: unified. */
  roleExtras?: RoleExtras | null;
}

export interface UnifiedWorker {
  readonly workerId: string;
  readonly port: number;
  readonly grpcAddress: string;
  readonly startedAtMs: number;
  /** Graceful stop: drain, leave, wait up to graceMs for running requests, then abort them. */
  close(graceMs?: number): Promise<void>;
}

function defaultWorkerId(port: number): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9_-]/g, '-')
    .slice(0, 40);
  return `${host}-${port}-${randomBytes(3).toString('hex')}`;
}

export async function startUnifiedWorker(options: UnifiedWorkerOptions): Promise<UnifiedWorker> {
  const host = options.host ?? '127.0.0.1';
  const startedAtMs = Date.now();
  const server = new grpc.Server({
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    // Ping idle clients so a vanished router's streams are cancelled (and their pages freed).
    'grpc.keepalive_time_ms': 15_000,
    'grpc.keepalive_timeout_ms': 5_000,
  });
  const port = await bindGrpcServer(server, host, options.port);
  const workerId = options.workerId ?? defaultWorkerId(port);
  assertWorkerId(workerId);
  const advertisedHost = host === '0.0.0.0' || host === '::' ? hostname() : host;
  const grpcAddress = options.advertiseAddress ?? `${advertisedHost}:${port}`;
  const logger = options.logger.child({ workerId });

  let nc: NatsConnection | null = null;
  let redis: Redis | null = null;
  let publisher: KvEventPublisher | null = null;
  let unsubscribeKv: (() => void) | null = null;
  let announcer: Announcer | null = null;
  try {
    if (options.natsUrl !== null) {
      nc = await connectNats({ url: options.natsUrl, name: `tandem-worker-${workerId}` });
      publisher = new KvEventPublisher(nc, workerId, startedAtMs, logger);
      unsubscribeKv = options.engine.onKvEvent(publisher.push);
    }
    if (options.redisUrl !== null) {
      redis = await connectRedis({ url: options.redisUrl, name: `tandem-worker-${workerId}` });
    }
    const kvSeq = (): number => publisher?.publishedSeq ?? options.engine.dumpBlocks().seq;
    const service = new WorkerService({
      workerId,
      engine: options.engine,
      model: options.model,
      device: options.device,
      startedAtMs,
      kvSeq,
      logger,
      roleExtras: options.roleExtras ?? null,
    });
    addGrpcService(server, Worker, service.implementation());
    options.roleExtras?.extendServer(server);
    if (nc !== null) {
      announcer = new Announcer({
        nc,
        redis,
        engine: options.engine,
        workerId,
        grpcAddress,
        modelName: options.model.modelName,
        kvLayout: toWireKvLayout(options.model.kvLayout),
        startedAtMs,
        kvSeq,
        heartbeatIntervalMs: options.heartbeatIntervalMs ?? 2000,
        leaseTtlMs: options.leaseTtlMs ?? 10_000,
        loadIntervalMs: options.loadIntervalMs ?? 1000,
        logger,
        role: options.roleExtras?.role ?? 'unified',
      });
      await announcer.start();
    }
    logger.info('worker serving', { grpcAddress, nats: options.natsUrl, redis: options.redisUrl });

    let closing: Promise<void> | null = null;
    const close = async (graceMs = 10_000): Promise<void> => {
      service.drain();
      await announcer?.stop();
      if (!(await service.waitIdle(graceMs))) {
        logger.warn('aborting requests still running after the grace period', {
          numRunning: service.numRunning,
        });
        service.abortAll();
        await service.waitIdle(2000);
      }
      options.roleExtras?.abortAll();
      await options.roleExtras?.close();
      await shutdownGrpcServer(server, 2000);
      unsubscribeKv?.();
      publisher?.flush();
      await nc?.drain().catch(() => {});
      redis?.disconnect();
      await options.engine.close();
      logger.info('worker stopped');
    };
    return {
      workerId,
      port,
      grpcAddress,
      startedAtMs,
      close: (graceMs) => {
        closing ??= close(graceMs);
        return closing;
      },
    };
  } catch (error) {
    unsubscribeKv?.();
    await nc?.close().catch(() => {});
    redis?.disconnect();
    server.forceShutdown();
    throw error;
  }
}
