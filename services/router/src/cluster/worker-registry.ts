// The workers this router can use: common's discovery (WorkerDirectory: NATS announcements,
// Redis leases, expiry, one page size per model) plus what routing keeps per worker: its gRPC
// client, circuit breaker, measured prefill rate, this router's prompts without a first token yet,
// and its pick order. Prefill workers (role PREFILL) are kept apart: never routed to, but their KV
// events feed the index and the router names one in a decode worker's Generate
// (`prefillWorkers()`). Records change only through the methods below.
import {
  type ClusterSecurity,
  createGrpcClient,
  type DirectoryEvent,
  type DiscoveredWorker,
  followWorkers,
  type GrpcClient,
  grpcClientOptions,
  kvBytesPerPageOf,
  type Logger,
  leaseAlive,
  membershipVerifier,
  type NatsConnection,
  openCluster,
  type Redis,
  readLeases,
  verifiedInfo,
  verifiesMembership,
  WorkerDirectory,
} from '@tandem/common';
import { type LoadReport, ServingStatus, Worker, type WorkerAnnounce, type WorkerLoad } from '@tandem/proto';
import { ownOrPooled, pooledStepCosts, type StepCoefficients, trustedStepCost } from '../policy/step-cost.ts';
import { CircuitBreaker, type CircuitBreakerParams } from './circuit-breaker.ts';

export type WorkerRoleName = DiscoveredWorker['role'];

/** A prompt this router sent to a worker, for the prefill-queue estimate. */
interface PrefillInFlight {
  sentAtMs: number;
  /** Uncached prompt tokens expected to compute there. */
  numTokens: number;
}

/** What routing reads of a worker (discovery fields plus routing state), read-only. */
export interface WorkerRecord extends DiscoveredWorker {
  readonly client: GrpcClient<typeof Worker>;
  readonly breaker: CircuitBreaker;
  /** Prefill throughput (tokens/ms), an EWMA of what first tokens took. */
  readonly prefillTokensPerMs: number;
  readonly numPrefillSamples: number;
  /** This router's requests to it without a first token yet. */
  readonly pendingPrefills: ReadonlyMap<string, PrefillInFlight>;
  /** Queued prefill tokens in its last report that are not this router's (other replicas'). */
  readonly numOthersQueuedPrefillTokens: number;
  /** This router's pick order (0: never picked). */
  readonly lastPickedSeq: number;
}

/** The record behind WorkerRecord: discovery fields read through, routing state owned here. */
class RoutedWorker implements WorkerRecord {
  readonly #info: DiscoveredWorker;
  readonly client: GrpcClient<typeof Worker>;
  readonly breaker: CircuitBreaker;
  prefillTokensPerMs: number;
  numPrefillSamples = 0;
  readonly pendingPrefills = new Map<string, PrefillInFlight>();
  /** This router's requests prefilled lately (to tell them apart in a load report). */
  recentPrefills: (PrefillInFlight & { firstTokenAtMs: number })[] = [];
  numOthersQueuedPrefillTokens = 0;
  lastPickedSeq = 0;

  constructor(
    info: DiscoveredWorker,
    breaker: CircuitBreakerParams,
    prefillTokensPerMs: number,
    security: ClusterSecurity,
  ) {
    this.#info = info;
    this.client = createGrpcClient(Worker, info.grpcAddress, grpcClientOptions(security));
    this.breaker = new CircuitBreaker(breaker);
    this.prefillTokensPerMs = prefillTokensPerMs;
  }

  get workerId(): string {
    return this.#info.workerId;
  }
  get role(): WorkerRoleName {
    return this.#info.role;
  }
  get grpcAddress(): string {
    return this.#info.grpcAddress;
  }
  get metricsAddress(): string | null {
    return this.#info.metricsAddress;
  }
  get modelName(): string {
    return this.#info.modelName;
  }
  get pageSize(): number {
    return this.#info.pageSize;
  }
  get kvBytesPerPage(): number {
    return this.#info.kvBytesPerPage;
  }
  get kvAddress(): string {
    return this.#info.kvAddress;
  }
  get leaseTtlMs(): number {
    return this.#info.leaseTtlMs;
  }
  get lastHeardMs(): number {
    return this.#info.lastHeardMs;
  }
  get load(): LoadReport | null {
    return this.#info.load;
  }
  get loadAtMs(): number {
    return this.#info.loadAtMs;
  }
}

export interface RegistryParams {
  /** Model names accepted from announcements. */
  modelNames: readonly string[];
  breaker: CircuitBreakerParams;
  /** Prefill rate assumed before any measurement, tokens/ms. */
  defaultPrefillTokensPerMs: number;
  /** Weight of a new measurement in the prefill-rate EWMA. */
  prefillRateAlpha: number;
  /** Used when a lease does not say (ms). */
  defaultLeaseTtlMs: number;
  /** TLS and the cluster secret: workers are used only once they prove membership (default open). */
  security?: ClusterSecurity;
}

export type RegistryEvent = DirectoryEvent;

/** How long a finished prefill is remembered for matching against load reports. */
const recentPrefillKeepMs = 3000;
/** Past this many, a worker's finished prefills older than recentPrefillKeepMs are dropped. */
const maxRecentPrefills = 1024;
/** Shorter prefills measure fixed overhead more than throughput. */
const minPrefillSampleTokens = 32;
/** A worker's own rate counts once it is this far from the pool's... */
const ownRateFactor = 3;
/** ...after this many measurements. */
const minOwnRateSamples = 10;

export class WorkerRegistry {
  readonly #params: RegistryParams;
  readonly #logger: Logger;
  readonly #redis: Redis | null;
  readonly #directory: WorkerDirectory<RoutedWorker>;
  readonly #security: ClusterSecurity;
  #unfollow: () => void = () => {};
  /** Routable workers sorted by id, and the pools' mean prefill rates: rebuilt when stale. */
  #routable: WorkerRecord[] | null = null;
  #poolRates: {
    routable: number;
    prefill: number;
    /** The pool's step costs from its workers' fits (null: no trusted fit in the pool). */
    routableFit: StepCoefficients | null;
    prefillFit: StepCoefficients | null;
  } | null = null;

  constructor(params: RegistryParams, redis: Redis | null, logger: Logger) {
    this.#params = params;
    this.#redis = redis;
    this.#logger = logger;
    const security = params.security ?? openCluster;
    this.#security = security;
    this.#directory = new WorkerDirectory<RoutedWorker>(
      {
        modelNames: params.modelNames,
        roles: ['unified', 'decode', 'prefill'],
        defaultLeaseTtlMs: params.defaultLeaseTtlMs,
        pageSize: null,
        verify: membershipVerifier(security, logger),
      },
      logger,
      (info) => new RoutedWorker(info, params.breaker, params.defaultPrefillTokensPerMs, security),
      (_info, worker) => worker.client.close(),
    );
    this.#directory.onEvent((event) => {
      if (event.type === 'load') this.#onLoad(event.workerId);
      else this.#membershipChanged();
    });
  }

  /** The model's KV page size (prompts are hashed in it), or null before the first worker. */
  get pageSize(): number | null {
    return this.#directory.pageSize;
  }

  onEvent(listener: (event: RegistryEvent) => void): void {
    this.#directory.onEvent(listener);
  }

  /** A worker of any role (prefill workers included). */
  get(workerId: string): WorkerRecord | null {
    return this.#directory.entry(workerId)?.extension ?? null;
  }

  /**
   * The workers requests are routed to (unified and decode), sorted by id. One shared array per
   * membership (a decision reads it without copying): callers must not change it.
   */
  all(): readonly WorkerRecord[] {
    if (this.#routable === null) {
      this.#routable = this.#byRole((role) => role !== 'prefill');
      this.#routable.sort((a, b) => (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0));
    }
    return this.#routable;
  }

  /** The prefill workers a decode worker can be told to use. */
  prefillWorkers(): WorkerRecord[] {
    return this.#byRole((role) => role === 'prefill');
  }

  /** Routable workers (unified and decode). */
  get size(): number {
    let count = 0;
    for (const { worker } of this.#directory.entries()) if (worker.role !== 'prefill') count++;
    return count;
  }

  /** Follows the workers' announcements and load reports on NATS (until close). */
  follow(nc: NatsConnection): void {
    this.#unfollow = followWorkers(nc, this.#directory, this.#logger);
  }

  onAnnounce(announce: WorkerAnnounce, nowMs: number): void {
    this.#directory.onAnnounce(announce, nowMs);
  }

  onLoad(report: WorkerLoad, nowMs: number): void {
    this.#directory.onLoad(report, nowMs);
  }

  /** Reads every lease in Redis (a router that starts after its workers). */
  async discoverFromLeases(nowMs: number): Promise<void> {
    if (this.#redis === null) return;
    for (const { lease, ttlMs } of await readLeases(this.#redis)) {
      if (this.#directory.has(lease.workerId) || !this.#params.modelNames.includes(lease.modelName)) continue;
      const info = await this.#probeInfo(lease.workerId, lease.grpcAddress);
      if (info === null || this.#directory.has(lease.workerId)) continue;
      const added = this.#directory.add(
        {
          workerId: lease.workerId,
          role: lease.role,
          grpcAddress: lease.grpcAddress,
          metricsAddress: lease.metricsAddress,
          modelName: lease.modelName,
          pageSize: info.pageSize,
          kvBytesPerPage: info.kvBytesPerPage,
          leaseTtlMs: Math.max(ttlMs, this.#params.defaultLeaseTtlMs),
        },
        nowMs,
      );
      // Its KV events: synced from a dump (no incarnation known, so the index asks for one).
      if (added) this.#directory.noteKvSeq(lease.workerId, info.kvSeq, 0n);
    }
  }

  /** Drops workers silent past their lease TTL whose Redis lease is also gone. */
  async expireSilent(nowMs: number): Promise<void> {
    const redis = this.#redis;
    await this.#directory.expireSilent(nowMs, redis === null ? undefined : (id) => leaseAlive(redis, id));
  }

  /**
   * Health checks: a worker whose circuit is half-open (its open period is over) gets a Health
   * call when no other probe is in flight; SERVING is one good probe (enough of them close the
   * circuit), anything else opens it again.
   */
  async probeUnhealthy(nowMs: number): Promise<void> {
    const probes = this.all()
      .filter((worker) => worker.breaker.state(nowMs) === 'half_open' && worker.breaker.allows(nowMs))
      .map(async (worker) => {
        const ticket = worker.breaker.onAttempt(nowMs);
        try {
          const health = await worker.client.health({}, { timeoutMs: 1000 });
          if (health.status === ServingStatus.SERVING) ticket.success();
          else ticket.failure(Date.now());
        } catch {
          ticket.failure(Date.now());
        }
      });
    await Promise.all(probes);
  }

  remove(workerId: string, reason: string): void {
    this.#directory.remove(workerId, reason);
  }

  /** The router picked the worker (for this request or as its prefill worker): pick order. */
  markPicked(workerId: string, pickSeq: number): void {
    const worker = this.#routed(workerId);
    if (worker !== null) worker.lastPickedSeq = pickSeq;
  }

  /** A prompt went to the worker; `numTokens` uncached tokens are expected to compute there. */
  prefillSent(workerId: string, requestId: string, sentAtMs: number, numTokens: number): void {
    this.#routed(workerId)?.pendingPrefills.set(requestId, { sentAtMs, numTokens });
  }

  /** Its first token arrived: the prompt left the worker's prefill queue. */
  prefillDone(workerId: string, requestId: string, firstTokenAtMs: number): void {
    const worker = this.#routed(workerId);
    const pending = worker?.pendingPrefills.get(requestId);
    if (worker === null || pending === undefined) return;
    worker.pendingPrefills.delete(requestId);
    worker.recentPrefills.push({ ...pending, firstTokenAtMs });
    // Load reports prune this list; without them (a worker that stopped reporting) it is cut here.
    if (worker.recentPrefills.length > maxRecentPrefills)
      worker.recentPrefills = worker.recentPrefills.filter(
        (p) => p.firstTokenAtMs > firstTokenAtMs - recentPrefillKeepMs,
      );
  }

  /** Finished prefills remembered for load-report matching, over all workers. */
  get numRecentPrefills(): number {
    let count = 0;
    for (const { extension } of this.#directory.entries()) count += extension.recentPrefills.length;
    return count;
  }

  /** The request ended (done, failed or cancelled) without a first token from this worker. */
  prefillAbandoned(workerId: string, requestId: string): void {
    this.#routed(workerId)?.pendingPrefills.delete(requestId);
  }

  /**
   * The prefill rate a decision should use for the worker. When its pool (its kind: prefill
   * workers, whose time to first token includes the KV transfer, or the routable ones) has
   * trusted step-cost fits, from them by policy/step-cost.ts's rule. Else from first-token times:
   * the pool's mean, unless the worker's own measurement differs from it by more than
   * `ownRateFactor` (different hardware). Either way identical workers get one rate, so
   * measurement noise does not steer all traffic to one of them.
   */
  prefillRateFor(worker: WorkerRecord): number {
    const isPrefill = worker.role === 'prefill';
    // Pool means are cached (a decision asks once per candidate): O(1) instead of O(workers);
    // a load report (a new fit), a prefill sample or a membership change drops them.
    this.#poolRates ??= {
      routable: this.#poolRate(false),
      prefill: this.#poolRate(true),
      routableFit: this.#poolFit(false),
      prefillFit: this.#poolFit(true),
    };
    // The workers' own fits of their steps, by policy/step-cost.ts's rule (cache_aware prices
    // the rest of the step by the same one).
    const poolFit = isPrefill ? this.#poolRates.prefillFit : this.#poolRates.routableFit;
    if (poolFit !== null) {
      const fit = trustedStepCost(worker.load?.stepCost);
      return 1 / (fit === null ? poolFit : ownOrPooled(fit, poolFit)).prefillMsPerToken;
    }
    const poolRate = isPrefill ? this.#poolRates.prefill : this.#poolRates.routable;
    if (worker.numPrefillSamples < minOwnRateSamples) return poolRate;
    const ratio = worker.prefillTokensPerMs / poolRate;
    return ratio > ownRateFactor || ratio < 1 / ownRateFactor ? worker.prefillTokensPerMs : poolRate;
  }

  /** Folds a measured time to first token into the worker's prefill rate (long prompts only). */
  recordPrefill(workerId: string, numUncachedTokens: number, ttftMs: number): void {
    const worker = this.#routed(workerId);
    if (worker === null || numUncachedTokens < minPrefillSampleTokens || ttftMs <= 0) return;
    const rate = numUncachedTokens / ttftMs;
    // A new worker starts from the pool's rate, so one cold first request does not mark it slow.
    if (worker.numPrefillSamples === 0) worker.prefillTokensPerMs = this.prefillRateFor(worker);
    const alpha = this.#params.prefillRateAlpha;
    worker.prefillTokensPerMs = alpha * rate + (1 - alpha) * worker.prefillTokensPerMs;
    worker.numPrefillSamples++;
    this.#poolRates = null;
  }

  close(): void {
    this.#unfollow();
    this.#directory.clear();
    this.#membershipChanged();
  }

  #membershipChanged(): void {
    this.#routable = null;
    this.#poolRates = null;
  }

  /** One pool's step costs from its workers' fits (policy/step-cost.ts). */
  #poolFit(prefill: boolean): StepCoefficients | null {
    const fits = [];
    for (const { worker } of this.#directory.entries())
      if ((worker.role === 'prefill') === prefill) fits.push(worker.load?.stepCost);
    return pooledStepCosts(fits);
  }

  /** Mean measured prefill rate of one pool (prefill workers or routable ones). */
  #poolRate(prefill: boolean): number {
    let sum = 0;
    let count = 0;
    for (const { worker, extension } of this.#directory.entries()) {
      if ((worker.role === 'prefill') !== prefill || extension.numPrefillSamples === 0) continue;
      sum += extension.prefillTokensPerMs;
      count++;
    }
    return count === 0 ? this.#params.defaultPrefillTokensPerMs : sum / count;
  }

  #routed(workerId: string): RoutedWorker | null {
    return this.#directory.entry(workerId)?.extension ?? null;
  }

  #byRole(keep: (role: WorkerRoleName) => boolean): WorkerRecord[] {
    const workers: WorkerRecord[] = [];
    for (const { worker, extension } of this.#directory.entries())
      if (keep(worker.role)) workers.push(extension);
    return workers;
  }

  /**
   * A load report (or announcement) arrived. The report counts every queued prompt; ours at its
   * timestamp are known exactly (and counted fresh at decision time), so keep only the rest:
   * other replicas' work.
   */
  #onLoad(workerId: string): void {
    const worker = this.#routed(workerId);
    if (worker === null) return;
    this.#poolRates = null; // the report may carry a new step-cost fit
    const reportMs = worker.loadAtMs;
    let numOwnTokens = 0;
    for (const prefill of worker.pendingPrefills.values()) {
      if (prefill.sentAtMs <= reportMs) numOwnTokens += prefill.numTokens;
    }
    worker.recentPrefills = worker.recentPrefills.filter(
      (p) => p.firstTokenAtMs > reportMs - recentPrefillKeepMs,
    );
    for (const prefill of worker.recentPrefills) {
      if (prefill.sentAtMs <= reportMs && prefill.firstTokenAtMs > reportMs)
        numOwnTokens += prefill.numTokens;
    }
    worker.numOthersQueuedPrefillTokens = Math.max(
      0,
      (worker.load?.numQueuedPrefillTokens ?? 0) - numOwnTokens,
    );
  }

  async #probeInfo(
    workerId: string,
    address: string,
  ): Promise<{ pageSize: number; kvBytesPerPage: number; kvSeq: bigint } | null> {
    const toFacts = (info: { kvLayout?: Parameters<typeof kvBytesPerPageOf>[0]; kvSeq: bigint }) => ({
      pageSize: info.kvLayout?.pageSize ?? 0,
      kvBytesPerPage: kvBytesPerPageOf(info.kvLayout),
      kvSeq: info.kvSeq,
    });
    // A lease is as easy to forge as an announcement: the same proof is asked for.
    if (verifiesMembership(this.#security)) {
      const info = await verifiedInfo(this.#security, { workerId, grpcAddress: address }, this.#logger);
      return info === null ? null : toFacts(info);
    }
    const client = createGrpcClient(Worker, address);
    try {
      return toFacts(await client.info({}, { timeoutMs: 2000 }));
    } catch (error) {
      this.#logger.warn('a leased worker does not answer Info', { address, error });
      return null;
    } finally {
      client.close();
    }
  }
}
