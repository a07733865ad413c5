// Assembles a router process: per served model (model-route.ts) its checkpoint, worker registry,
// KV index, policy and prefill-worker choice, constraint checker; shared by all: NATS
// subscriptions (announcements, load reports, KV events), Redis (leases, shared in-flight counts),
// admission, metrics and the HTTP server.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  ConfigError,
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
import { type ModelRoute, ModelRoutes } from './model-route.ts';
import { ConstraintChecker } from './openai/constraint-check.ts';
import { createPolicy } from './policy/policies.ts';
import { SessionTable } from './policy/session-affinity.ts';
import type { RouterOptions } from './router-options.ts';

import { RouterService } from './service.ts';

export class RouterApp {
  readonly port: number;
  readonly url: string;
  /** Every served model's route (registry, index, dispatcher...), by name. */
  readonly routes: ModelRoutes;
  /** The first --model's registry, index, KV sync and dispatcher. */
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
  #closed = false;

  private constructor(parts: {
    port: number;
    host: string;
    routes: ModelRoutes;
    nc: NatsConnection;
    redis: Redis | null;
    http: RouterHttpServer;
    inflight: InflightCounts;
    metrics: RouterMetrics;
    timer: NodeJS.Timeout;
  }) {
    this.port = parts.port;
    this.url = `http://${parts.host.includes(':') ? `[${parts.host}]` : parts.host}:${parts.port}`;
    this.routes = parts.routes;
    const first = parts.routes.all()[0] as ModelRoute;
    this.registry = first.registry;
    this.index = first.index;
    this.kvSync = first.kvSync;
    this.dispatcher = first.dispatcher;
    this.#nc = parts.nc;
    this.#redis = parts.redis;
    this.#http = parts.http;
    this.#inflight = parts.inflight;
    this.#metrics = parts.metrics;
    this.#timer = parts.timer;
  }

  /** The route of a served model name (or alias), or null. */
  route(modelName: string): ModelRoute | null {
    return this.routes.get(modelName);
  }

  static async start(options: RouterOptions): Promise<RouterApp> {
    const replicaId = options.replicaId ?? `router-${randomUUID().slice(0, 8)}`;
    if (options.models.length === 0) throw new ConfigError('--model DIR is required', { param: '--model' });
    const models = await Promise.all(
      options.models.map((m) =>
        loadServedModel(m.dir, m.servedName, options.tokenizeThreads, options.toolCallParser),
      ),
    );
    const closeModels = async (): Promise<void> => {
      for (const model of models) await model.close();
    };
    const seen = new Set<string>();
    for (const model of models) {
      if (seen.has(model.name)) {
        await closeModels();
        throw new ConfigError(`two --model flags serve the name '${model.name}'`, {
          param: '--served-model-name',
        });
      }
      seen.add(model.name);
    }
    const nc = await connectNats({ url: options.natsUrl, name: `tandem-${replicaId}` });
    const redis =
      options.redisUrl === null
        ? null
        : await connectRedis({ url: options.redisUrl, name: `tandem-${replicaId}` });
    // A start that fails (a taken port) undoes what it set up, so the process can exit.
    const undo: (() => Promise<void> | void)[] = [
      closeModels,
      () => redis?.disconnect(),
      () => nc.drain().catch(() => {}),
    ];
    try {
      return await RouterApp.#startOn(options, replicaId, models, nc, redis, undo);
    } catch (error) {
      for (const step of undo.reverse()) await step();
      throw error;
    }
  }

  /** One model's registry, index, KV sync, dispatcher and constraint checker. */
  static #route(
    options: RouterOptions,
    replicaId: string,
    model: ServedModel,
    nc: NatsConnection,
    redis: Redis | null,
    shared: { inflight: InflightCounts; metrics: RouterMetrics; decisions: DecisionLog },
  ): ModelRoute {
    const { logger } = options;
    const { inflight, metrics, decisions } = shared;
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
    const sessions = options.sessions === null ? null : new SessionTable(options.sessions);
    const policy = createPolicy(options.policy, options.cacheAware, sessions);
    const routedFeed = new RoutedFeed(
      nc,
      replicaId,
      index,
      logger,
      (workerId) => registry.get(workerId) !== null,
    );
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
          if (decision.workerId !== null) metrics.decisionsOf(decision.policy, decision.workerId).inc();
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
    // Per-worker counters start at 0 when the worker appears, so "no retries yet" reads as 0
    // rather than as a missing series.
    const startWorkerCounters = (workerId: string): void => {
      for (const counter of [metrics.retries, metrics.hedges, metrics.failovers])
        counter.with({ worker: workerId });
    };
    for (const worker of registry.all()) startWorkerCounters(worker.workerId);
    registry.onEvent((event) => {
      if (event.type === 'load') kvSync.onWorkerSeq(event.workerId, event.kvSeq, event.startedAtMs);
      else if (event.type === 'joined') startWorkerCounters(event.workerId);
      else if (event.type === 'left') {
        kvSync.forget(event.workerId);
        inflight.forget(event.workerId);
        metrics.forgetWorker(event.workerId, policy.name);
      }
    });
    const constraints = ConstraintChecker.start(model.dir, model.name, logger);
    return { model, registry, index, kvSync, dispatcher, constraints };
  }

  /** The rest of start(), once NATS and Redis are connected; pushes its undo steps on `undo`. */
  static async #startOn(
    options: RouterOptions,
    replicaId: string,
    models: ServedModel[],
    nc: NatsConnection,
    redis: Redis | null,
    undo: (() => Promise<void> | void)[],
  ): Promise<RouterApp> {
    const { logger } = options;
    const inflight = new InflightCounts(
      redis,
      { replicaId, replicaTtlMs: options.replicaTtlMs, refreshMs: options.inflightRefreshMs },
      logger,
    );
    // One registry for all models: its {model} label names them all (a,b with several).
    const peers = options.processGroup ?? null;
    const metrics = new RouterMetrics(models.map((model) => model.name).join(','), {
      enabled: options.metricsEnabled,
      process: peers?.index ?? null,
    });
    undo.push(() => metrics.close());
    const decisions = new DecisionLog(options.decisionLogSize);
    peers?.answer((query) => (query.kind === 'metrics' ? metrics.render() : decisions.get(query.requestId)));
    const routes = new ModelRoutes(
      models.map((model) =>
        RouterApp.#route(options, replicaId, model, nc, redis, { inflight, metrics, decisions }),
      ),
    );
    undo.push(async () => {
      for (const route of routes.all()) await route.constraints.close();
    });
    const admission = new AdmissionQueue(options.admission);
    const keyLimiter = new KeyLimiter(
      redis,
      // A request's slot outlives it only if its replica crashed: then it lapses after this.
      { replicaId, slotLeaseMs: options.requestTimeoutMs + 60_000 },
      logger,
    );
    const service = new RouterService({ keyLimiter, models: routes, admission, metrics });
    const sumOver = (f: (route: ModelRoute) => number) => () =>
      routes.all().reduce((sum, route) => sum + f(route), 0);
    metrics.gauge(
      'tandem_router_workers',
      'Workers this router can route to',
      sumOver((r) => r.registry.size),
    );
    metrics.gauge(
      'tandem_router_kv_index_blocks',
      'Blocks in the KV index',
      sumOver((r) => r.index.numBlocks),
    );
    metrics.gauge(
      'tandem_router_kv_index_pending_blocks',
      'Optimistic index entries',
      sumOver((r) => r.index.numPendingBlocks),
    );
    metrics.registry.counter('tandem_router_kv_resyncs_total', 'KV index resyncs from block dumps').track(
      {},
      sumOver((r) => r.kvSync.numResyncs),
    );
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
    registerWorkerGauges(metrics, routes, inflight);

    for (const route of routes.all()) route.registry.follow(nc);
    nc.subscribe(subjects.kvEventsAll, {
      callback: (error, message) => {
        if (error !== null) return;
        try {
          const batch = fromBinary(KvEventBatchSchema, message.data);
          // Only served models' workers; one that has not announced yet is synced from a dump
          // once it has (its load reports show where its events are).
          routes.ownerOf(batch.workerId)?.kvSync.onBatch(batch);
        } catch (cause) {
          logger.warn('bad KV event batch', { error: cause });
        }
      },
    });
    await nc.flush();
    inflight.start();
    undo.push(async () => {
      await inflight.stop();
      for (const route of routes.all()) route.registry.close();
    });
    for (const route of routes.all()) {
      try {
        await route.registry.discoverFromLeases(Date.now());
      } catch (error) {
        logger.warn('lease discovery failed', { error, model: route.model.name });
      }
    }
    const timer = setInterval(() => {
      for (const route of routes.all()) {
        route.registry
          .expireSilent(Date.now())
          .catch((error: unknown) => logger.warn('expiry sweep failed', { error }));
        void route.registry.probeUnhealthy(Date.now());
      }
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
        ...routes.all().flatMap((route) =>
          [...route.registry.all(), ...route.registry.prefillWorkers()].map((worker) => ({
            role: worker.role,
            id: worker.workerId,
            grpcAddress: worker.grpcAddress,
            metricsAddress: worker.metricsAddress,
          })),
        ),
      ],
    });
    const http = new RouterHttpServer({
      debug,
      service,
      decisions,
      metrics,
      logger,
      // Ready while some worker of some model is not shut out (closed, or half-open: a probe will tell).
      isReady: () =>
        routes
          .all()
          .some((route) =>
            route.registry.all().some((worker) => worker.breaker.state(Date.now()) !== 'open'),
          ),
      requestTimeoutMs: options.requestTimeoutMs,
      maxBodyBytes: options.maxBodyBytes,
      bodyTimeoutMs: options.bodyTimeoutMs,
      apiKeys: options.apiKeys.length === 0 ? null : new ApiKeyTable(options.apiKeys),
      adminAccess: options.adminAccess,
      adminKeys: new ApiKeyTable(options.adminKeys.map((key) => ({ key, limits: unlimitedKey }))),
      peers,
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
      models: models.map((model) => model.name),
      policy: options.policy,
      replicaId,
    });
    return new RouterApp({ port, host: options.host, routes, nc, redis, http, inflight, metrics, timer });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#http.close();
    await this.#inflight.stop();
    for (const route of this.routes.all()) route.registry.close();
    this.#metrics.close();
    await this.#nc.drain().catch(() => {});
    this.#redis?.disconnect();
    for (const route of this.routes.all()) {
      await route.constraints.close();
      await route.model.close();
    }
  }
}

const circuitStates = { closed: 0, half_open: 1, open: 2 } as const;

/** Per-worker series read at scrape time: circuit-breaker state, in-flight requests, role. */
function registerWorkerGauges(metrics: RouterMetrics, routes: ModelRoutes, inflight: InflightCounts): void {
  const routed = () => routes.all().flatMap((route) => route.registry.all());
  const known = () =>
    routes.all().flatMap((route) => [...route.registry.all(), ...route.registry.prefillWorkers()]);
  metrics
    .gauges(
      'tandem_router_circuit_breaker_state',
      'Circuit breaker per worker: 0 closed, 1 half-open (probing), 2 open',
    )
    .trackAll(() => {
      const now = Date.now();
      return routed().map(
        (worker) => [{ worker: worker.workerId }, circuitStates[worker.breaker.state(now)]] as const,
      );
    });
  metrics
    .gauges('tandem_router_worker_inflight', 'Requests in flight per worker (all router replicas)')
    .trackAll(() =>
      routed().map((worker) => [{ worker: worker.workerId }, inflight.count(worker.workerId)] as const),
    );
  metrics.gauges('tandem_router_known_workers', 'Workers this router knows, by role').trackAll(() => {
    const counts = new Map<string, number>([
      ['unified', 0],
      ['decode', 0],
      ['prefill', 0],
    ]);
    for (const worker of known()) counts.set(worker.role, (counts.get(worker.role) ?? 0) + 1);
    return [...counts].map(([role, count]) => [{ role }, count] as const);
  });
}
