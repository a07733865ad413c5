// Assembles a router process: the served model, NATS subscriptions (announcements, load reports,
// KV events), Redis (leases, shared in-flight counts), the KV index, the policy, the prefill-worker
// choice for decode workers, admission and the HTTP server.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  connectNats,
  connectRedis,
  type NatsConnection,
  type Redis,
  requestBlockDump,
  seededRandom,
  subjects,
} from '@tandem/common';
import { fromBinary, KvEventBatchSchema } from '@tandem/proto';
import { ApiKeyTable, unlimitedKey } from './auth/api-keys.ts';
import { KeyLimiter } from './auth/key-limiter.ts';
import { AdmissionQueue } from './cluster/admission.ts';
import { DecisionLog } from './cluster/decision-log.ts';
import { Dispatcher } from './cluster/dispatcher.ts';
import { InflightCounts } from './cluster/inflight.ts';
import { RoutedFeed } from './cluster/routed-feed.ts';
import { WorkerRegistry } from './cluster/worker-registry.ts';
import type { DebugListing } from './debug-listing.ts';
import { PortInUseError } from './errors.ts';
import { RouterHttpServer } from './http-server.ts';
import { KvEventSync } from './kv/kv-event-sync.ts';
import { KvIndex } from './kv/kv-index.ts';
import { RouterMetrics } from './metrics.ts';
import { loadServedModel, type ServedModel } from './model.ts';
import { createPolicy } from './policy/policies.ts';
import type { RouterOptions } from './router-options.ts';

import { RouterService } from './service.ts';

export class RouterApp {
  readonly port: number;
  readonly url: string;
  readonly registry: WorkerRegistry;
  readonly index: KvIndex;
  readonly kvSync: KvEventSync;
  readonly dispatcher: Dispatcher;
  readonly #nc: NatsConnection;
  readonly #redis: Redis | null;
  readonly #http: RouterHttpServer;
  readonly #inflight: InflightCounts;
  readonly #metrics: RouterMetrics;
  readonly #timer: NodeJS.Timeout;
  readonly #model: ServedModel;
  #closed = false;

  private constructor(parts: {
    port: number;
    host: string;
    registry: WorkerRegistry;
    index: KvIndex;
    kvSync: KvEventSync;
    dispatcher: Dispatcher;
    nc: NatsConnection;
    redis: Redis | null;
    http: RouterHttpServer;
    inflight: InflightCounts;
    metrics: RouterMetrics;
    timer: NodeJS.Timeout;
    model: ServedModel;
  }) {
    this.port = parts.port;
    this.url = `http://${parts.host.includes(':') ? `[${parts.host}]` : parts.host}:${parts.port}`;
    this.registry = parts.registry;
    this.index = parts.index;
    this.kvSync = parts.kvSync;
    this.dispatcher = parts.dispatcher;
    this.#nc = parts.nc;
    this.#redis = parts.redis;
    this.#http = parts.http;
    this.#inflight = parts.inflight;
    this.#metrics = parts.metrics;
    this.#timer = parts.timer;
    this.#model = parts.model;
  }

  static async start(options: RouterOptions): Promise<RouterApp> {
    const replicaId = options.replicaId ?? `router-${randomUUID().slice(0, 8)}`;
    const model = await loadServedModel(options.modelDir, options.servedModelName, options.tokenizeThreads);
    const nc = await connectNats({ url: options.natsUrl, name: `tandem-${replicaId}` });
    const redis =
      options.redisUrl === null
        ? null
        : await connectRedis({ url: options.redisUrl, name: `tandem-${replicaId}` });
    // A start that fails (a taken port) undoes what it set up, so the process can exit.
    const undo: (() => Promise<void> | void)[] = [
      () => model.close(),
      () => redis?.disconnect(),
      () => nc.drain().catch(() => {}),
    ];
    try {
      return await RouterApp.#startOn(options, replicaId, model, nc, redis, undo);
    } catch (error) {
      for (const step of undo.reverse()) await step();
      throw error;
    }
  }

  /** The rest of start(), once NATS and Redis are connected; pushes its undo steps on `undo`. */
  static async #startOn(
    options: RouterOptions,
    replicaId: string,
    model: Awaited<ReturnType<typeof loadServedModel>>,
    nc: NatsConnection,
    redis: Redis | null,
    undo: (() => Promise<void> | void)[],
  ): Promise<RouterApp> {
    const { logger } = options;
    const index = new KvIndex({ optimisticTtlMs: options.optimisticTtlMs });
    const kvSync = new KvEventSync(index, (workerId) => requestBlockDump(nc, workerId), logger);
    const registry = new WorkerRegistry(
      {
        modelNames: [model.name, ...model.aliases],
        breaker: options.breaker,
        defaultPrefillTokensPerMs: options.defaultPrefillTokensPerMs,
        prefillRateAlpha: options.prefillRateAlpha,
        defaultLeaseTtlMs: options.defaultLeaseTtlMs,
        security: options.security,
      },
      redis,
      logger,
    );
    const inflight = new InflightCounts(
      redis,
      { replicaId, replicaTtlMs: options.replicaTtlMs, refreshMs: options.inflightRefreshMs },
      logger,
    );
    const metrics = new RouterMetrics(model.name, { enabled: options.metricsEnabled });
    undo.push(() => metrics.close());
    const policy = createPolicy(options.policy, options.cacheAware);
    const decisions = new DecisionLog(options.decisionLogSize);
    const routedFeed = new RoutedFeed(nc, replicaId, index, logger);
    const dispatcher = new Dispatcher({
      policy,
      index,
      registry,
      inflight,
      decisions,
      random: seededRandom(options.seed),
      logger,
      maxAttempts: options.maxAttempts,
      resilience: options.resilience,
      prefill: { ...options.prefillChoice, disaggThreshold: options.disaggThreshold },
      observer: {
        onRouted: (workerId, keys) => routedFeed.publish(workerId, keys),
        onDecision: (decision, _attempt, decideMs) => {
          metrics.decisionTime.observe(decideMs / 1000);
          if (decision.workerId !== null)
            metrics.decisions.inc({ policy: decision.policy, worker: decision.workerId });
        },
        onPrefillDecision: (decision) =>
          metrics.prefillDecisions.inc(
            decision.type === 'remote'
              ? { type: 'remote', worker: decision.workerId }
              : { type: decision.type },
          ),
        onFirstResponse: (_workerId, ttftMs) => metrics.ttft.observe(ttftMs / 1000),
        onRetry: (workerId) => metrics.retries.inc({ worker: workerId }),
        onHedge: (workerId) => metrics.hedges.inc({ worker: workerId }),
        onFailover: (workerId) => metrics.failovers.inc({ worker: workerId }),
      },
    });
    registry.onEvent((event) => {
      if (event.type === 'load') kvSync.onWorkerSeq(event.workerId, event.kvSeq, event.startedAtMs);
      else if (event.type === 'left') {
        kvSync.forget(event.workerId);
        inflight.forget(event.workerId);
      }
    });
    const admission = new AdmissionQueue(options.admission);
    const keyLimiter = new KeyLimiter(
      redis,
      // A request's slot outlives it only if its replica crashed: then it lapses after this.
      { replicaId, slotLeaseMs: options.requestTimeoutMs + 60_000 },
      logger,
    );
    const service = new RouterService({
      keyLimiter,
      model,
      dispatcher,
      admission,
      metrics,
      pageSize: () => registry.pageSize,
    });
    metrics.gauge('tandem_router_workers', 'Workers this router can route to', () => registry.size);
    metrics.gauge('tandem_router_kv_index_blocks', 'Blocks in the KV index', () => index.numBlocks);
    metrics.gauge(
      'tandem_router_kv_index_pending_blocks',
      'Optimistic index entries',
      () => index.numPendingBlocks,
    );
    metrics.registry
      .counter('tandem_router_kv_resyncs_total', 'KV index resyncs from block dumps')
      .track({}, () => kvSync.numResyncs);
    metrics.gauge('tandem_router_requests_running', 'Admitted requests', () => admission.numRunning);
    metrics.gauge(
      'tandem_router_requests_running_cost',
      'Cost of the admitted requests (prompt tokens + n x max_tokens x (1 + logprob entries))',
      () => admission.runningCost,
    );
    metrics.gauge(
      'tandem_router_requests_queued',
      'Requests waiting for admission',
      () => admission.numQueued,
    );
    registerWorkerGauges(metrics, registry, inflight);

    registry.follow(nc);
    nc.subscribe(subjects.kvEventsAll, {
      callback: (error, message) => {
        if (error !== null) return;
        try {
          const batch = fromBinary(KvEventBatchSchema, message.data);
          // Only this model's workers; one that has not announced yet is synced from a dump
          // once it has (its load reports show where its events are).
          if (registry.get(batch.workerId) !== null) kvSync.onBatch(batch);
        } catch (cause) {
          logger.warn('bad KV event batch', { error: cause });
        }
      },
    });
    await nc.flush();
    inflight.start();
    undo.push(async () => {
      await inflight.stop();
      registry.close();
    });
    try {
      await registry.discoverFromLeases(Date.now());
    } catch (error) {
      logger.warn('lease discovery failed', { error });
    }
    const timer = setInterval(() => {
      registry
        .expireSilent(Date.now())
        .catch((error: unknown) => logger.warn('expiry sweep failed', { error }));
      void registry.probeUnhealthy(Date.now());
    }, options.healthCheckMs);
    timer.unref();
    undo.push(() => clearInterval(timer));

    let listening: { host: string; port: number } | null = null;
    const debug = (): DebugListing => ({
      processes: [
        {
          role: 'router',
          id: replicaId,
          grpcAddress: null,
          metricsAddress: listening === null ? null : `${listening.host}:${listening.port}`,
        },
        ...[...registry.all(), ...registry.prefillWorkers()].map((worker) => ({
          role: worker.role,
          id: worker.workerId,
          grpcAddress: worker.grpcAddress,
          metricsAddress: worker.metricsAddress,
        })),
      ],
    });
    const http = new RouterHttpServer({
      debug,
      service,
      decisions,
      metrics,
      logger,
      // Ready while some worker is not shut out (closed, or half-open: a probe will tell).
      isReady: () => registry.all().some((worker) => worker.breaker.state(Date.now()) !== 'open'),
      modelCreatedAtS: model.createdAtS,
      requestTimeoutMs: options.requestTimeoutMs,
      maxBodyBytes: options.maxBodyBytes,
      bodyTimeoutMs: options.bodyTimeoutMs,
      apiKeys: options.apiKeys.length === 0 ? null : new ApiKeyTable(options.apiKeys),
      adminAccess: options.adminAccess,
      adminKeys: new ApiKeyTable(options.adminKeys.map((key) => ({ key, limits: unlimitedKey }))),
    });
    let port: number;
    try {
      port = await http.listen(options.host, options.port);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      throw new PortInUseError(
        `port ${options.port} on ${options.host} is already in use (another router?); choose another with --port`,
        { cause: error },
      );
    }
    const advertisedHost = options.host === '0.0.0.0' || options.host === '::' ? hostname() : options.host;
    listening = { host: advertisedHost.includes(':') ? `[${advertisedHost}]` : advertisedHost, port };
    logger.info('router listening', {
      url: `http://${options.host}:${port}`,
      model: model.name,
      policy: options.policy,
      replicaId,
    });
    return new RouterApp({
      port,
      host: options.host,
      registry,
      index,
      kvSync,
      dispatcher,
      nc,
      redis,
      http,
      inflight,
      metrics,
      timer,
      model,
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#http.close();
    await this.#inflight.stop();
    this.registry.close();
    this.#metrics.close();
    await this.#nc.drain().catch(() => {});
    this.#redis?.disconnect();
    await this.#model.close();
  }
}

const circuitStates = { closed: 0, half_open: 1, open: 2 } as const;

/** Per-worker series read at scrape time: circuit-breaker state, in-flight requests, role. */
function registerWorkerGauges(
  metrics: RouterMetrics,
  registry: WorkerRegistry,
  inflight: InflightCounts,
): void {
  metrics
    .gauges(
      'tandem_router_circuit_breaker_state',
      'Circuit breaker per worker: 0 closed, 1 half-open (probing), 2 open',
    )
    .trackAll(() => {
      const now = Date.now();
      return registry
        .all()
        .map((worker) => [{ worker: worker.workerId }, circuitStates[worker.breaker.state(now)]] as const);
    });
  metrics
    .gauges('tandem_router_worker_inflight', 'Requests in flight per worker (all router replicas)')
    .trackAll(() =>
      registry.all().map((worker) => [{ worker: worker.workerId }, inflight.count(worker.workerId)] as const),
    );
  metrics.gauges('tandem_router_known_workers', 'Workers this router knows, by role').trackAll(() => {
    const counts = new Map<string, number>([
      ['unified', 0],
      ['decode', 0],
      ['prefill', 0],
    ]);
    for (const worker of [...registry.all(), ...registry.prefillWorkers()])
      counts.set(worker.role, (counts.get(worker.role) ?? 0) + 1);
    return [...counts].map(([role, count]) => [{ role }, count] as const);
  });
}
