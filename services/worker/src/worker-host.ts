// The worker process host: the Worker gRPC service on one engine, plus (when NATS is configured)
// KV events, load reports, announcements and dumps, (when Redis is configured) a lease, the role
// it runs (role.ts; none: unified), and its metrics (one registry labelled {worker, role, model}
// that the role adds to, served on its own port and announced). close() is the SIGTERM path
// (drain): stop taking requests, deregister, let running requests and the role's calls (a prefill
// worker's Prefill calls) finish for a grace period, then abort the rest and release everything.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  addGrpcService,
  assertWorkerId,
  bindGrpcServer,
  type ClusterSecurity,
  callAuthorizer,
  connectNats,
  connectRedis,
  grpc,
  grpcServerCredentials,
  type Logger,
  MetricsRegistry,
  type MetricsServer,
  type NatsConnection,
  openCluster,
  type Redis,
  redactUrl,
  registerProcessMetrics,
  shutdownGrpcServer,
  startMetricsServer,
  WorkerLease,
} from '@tandem/common';
import { Worker } from '@tandem/proto';
import type { Engine } from '@tandem/runtime';
import { Announcer } from './announcer.ts';
import type { OutputConstraints } from './constraints.ts';
import { toWireKvLayout } from './convert.ts';
import type { ModelFacts } from './engine-port.ts';
import { KvEventPublisher } from './kv-event-publisher.ts';
import type { RoleFactory, RoleName, RoleOptions, WorkerRole } from './role.ts';
import { StepCostModel } from './step-cost.ts';
import { registerWorkerMetrics } from './worker-metrics.ts';
import { WorkerService } from './worker-service.ts';

/** How often a worker speaks up on the events plane (worker-options.ts has the flags). */
export interface PresenceTimings {
  heartbeatIntervalMs: number;
  leaseTtlMs: number;
  loadIntervalMs: number;
}

export const defaultPresenceTimings: PresenceTimings = {
  heartbeatIntervalMs: 2000,
  leaseTtlMs: 10_000,
  loadIntervalMs: 1000,
};

export interface WorkerHostOptions {
  engine: Engine;
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
  /** The cluster secret and gRPC TLS (default: an open cluster). */
  security?: ClusterSecurity;
  timings?: PresenceTimings;
  logger: Logger;
  /** The role to run, and its flags; null: unified. */
  role?: { name: RoleName; factory: RoleFactory; options: RoleOptions } | null;
  /** Port of the Prometheus endpoint (0 picks a free one); null: none. Default null. */
  metricsPort?: number | null;
  /** false: record no metrics at all (the benchmark's baseline). Default true. */
  metricsEnabled?: boolean;
  /** Compiles output constraints (structured outputs); null or absent: constrained requests are refused. */
  constraints?: OutputConstraints | null;
}

export interface WorkerHost {
  readonly workerId: string;
  readonly port: number;
  readonly grpcAddress: string;
  /** host:port of the Prometheus endpoint, or null. */
  readonly metricsAddress: string | null;
  readonly startedAtMs: number;
  /** Graceful stop: drain, leave, wait up to graceMs for running requests, then abort them. */
  close(graceMs?: number): Promise<void>;
}

/** Resolves true once `done()` holds, false after timeoutMs. */
async function waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return done();
}

function defaultWorkerId(port: number): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9_-]/g, '-')
    .slice(0, 40);
  return `${host}-${port}-${randomBytes(3).toString('hex')}`;
}

export async function startWorker(options: WorkerHostOptions): Promise<WorkerHost> {
  const host = options.host ?? '127.0.0.1';
  const timings = options.timings ?? defaultPresenceTimings;
  const startedAtMs = Date.now();
  const server = new grpc.Server({
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    // Ping idle clients so a vanished router's streams are cancelled (and their pages freed).
    'grpc.keepalive_time_ms': 15_000,
    'grpc.keepalive_timeout_ms': 5_000,
  });
  const security = options.security ?? openCluster;
  const port = await bindGrpcServer(server, host, options.port, grpcServerCredentials(security));
  const workerId = options.workerId ?? defaultWorkerId(port);
  assertWorkerId(workerId);
  const advertisedHost = host === '0.0.0.0' || host === '::' ? hostname() : host;
  const grpcAddress = options.advertiseAddress ?? `${advertisedHost}:${port}`;
  const logger = options.logger.child({ workerId });
  const { engine, model } = options;
  const constraints = options.constraints ?? null;
  const roleName = options.role?.name ?? 'unified';
  const metrics = new MetricsRegistry({
    constLabels: { worker: workerId, role: roleName, model: model.modelName },
    enabled: options.metricsEnabled ?? true,
  });
  const stopProcessMetrics = registerProcessMetrics(metrics);
  const workerMetrics = registerWorkerMetrics(metrics, engine);
  // The step costs it measures go out with every load report (routers predict prefill time).
  const stepCost = new StepCostModel();
  const stopStepCost = engine.onStep((step) => stepCost.record(step));
  let metricsServer: MetricsServer | null = null;

  let nc: NatsConnection | null = null;
  let redis: Redis | null = null;
  let publisher: KvEventPublisher | null = null;
  let unsubscribeKv: (() => void) | null = null;
  let announcer: Announcer | null = null;
  let role: WorkerRole | null = null;
  try {
    if (options.natsUrl !== null) {
      nc = await connectNats({ url: options.natsUrl, name: `tandem-worker-${workerId}` });
      publisher = new KvEventPublisher(nc, workerId, startedAtMs, logger);
      unsubscribeKv = engine.onKvEvent(publisher.push);
    }
    if (options.redisUrl !== null) {
      redis = await connectRedis({ url: options.redisUrl, name: `tandem-worker-${workerId}` });
    }
    if (options.role != null) {
      role = await options.role.factory(
        { engine, modelName: model.modelName, workerId, nc, security, logger, metrics, constraints },
        options.role.options,
      );
    }
    if (options.metricsPort != null && metrics.enabled) {
      metricsServer = await startMetricsServer(metrics, {
        host,
        port: options.metricsPort,
        advertiseHost: grpcAddress.slice(0, grpcAddress.lastIndexOf(':')).replace(/^\[|\]$/g, ''),
      });
    }
    const metricsAddress = metricsServer?.address ?? null;
    const kvSeq = (): number => publisher?.publishedSeq ?? engine.dumpBlocks().seq;
    const service = new WorkerService({
      workerId,
      engine,
      model,
      device: options.device,
      startedAtMs,
      kvSeq,
      logger,
      role,
      constraints,
      metrics: workerMetrics,
      grpcAddress,
      secret: security.secret,
    });
    const serviceOptions = { authorize: callAuthorizer(security) };
    addGrpcService(server, Worker, service.implementation(), serviceOptions);
    role?.addServices(server, serviceOptions);
    if (nc !== null) {
      const lease =
        redis === null
          ? null
          : new WorkerLease(
              redis,
              {
                workerId,
                grpcAddress,
                metricsAddress,
                modelName: model.modelName,
                role: roleName,
                startedAtMs,
              },
              timings.leaseTtlMs,
            );
      announcer = new Announcer({
        nc,
        lease,
        engine,
        workerId,
        grpcAddress,
        metricsAddress,
        modelName: model.modelName,
        kvLayout: toWireKvLayout(model.kvLayout),
        startedAtMs,
        kvSeq,
        heartbeatIntervalMs: timings.heartbeatIntervalMs,
        leaseTtlMs: timings.leaseTtlMs,
        loadIntervalMs: timings.loadIntervalMs,
        logger,
        role: roleName,
        kvAddress: role?.kvAddress ?? '',
        stepCost: () => stepCost.fit(),
      });
      await announcer.start();
    }
    logger.info('worker serving', {
      grpcAddress,
      metricsAddress,
      role: roleName,
      nats: options.natsUrl === null ? null : redactUrl(options.natsUrl),
      redis: options.redisUrl === null ? null : redactUrl(options.redisUrl),
      tls: security.tls !== null,
      clusterSecret: security.secret !== null,
    });

    let closing: Promise<void> | null = null;
    // Generate calls, and the role's own (a prefill worker's Prefill calls): a drain waits for both.
    const numRunning = (): number => service.numRunning + (role?.numRunning() ?? 0);
    const close = async (graceMs = 10_000): Promise<void> => {
      service.drain();
      await announcer?.stop();
      if (!(await waitUntil(() => numRunning() === 0, graceMs))) {
        logger.warn('aborting requests still running after the grace period', {
          numRunning: service.numRunning,
          numRoleCalls: role?.numRunning() ?? 0,
        });
        service.abortAll();
        role?.abortAll();
        await waitUntil(() => numRunning() === 0, 2000);
      }
      role?.abortAll();
      await role?.close();
      await shutdownGrpcServer(server, 2000);
      unsubscribeKv?.();
      publisher?.flush();
      await nc?.drain().catch(() => {});
      redis?.disconnect();
      workerMetrics.close();
      stopStepCost();
      stopProcessMetrics();
      await metricsServer?.close();
      await engine.close();
      await constraints?.close();
      logger.info('worker stopped');
    };
    return {
      workerId,
      port,
      grpcAddress,
      metricsAddress,
      startedAtMs,
      close: (graceMs) => {
        closing ??= close(graceMs);
        return closing;
      },
    };
  } catch (error) {
    unsubscribeKv?.();
    workerMetrics.close();
    stopStepCost();
    stopProcessMetrics();
    await metricsServer?.close();
    await role?.close().catch(() => {});
    await nc?.close().catch(() => {});
    redis?.disconnect();
    server.forceShutdown();
    throw error;
  }
}
