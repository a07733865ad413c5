// The workers this router can use: found through NATS announcements (join, heartbeat, leave)
// and, at startup, through their Redis leases; forgotten when they leave, or when they fall
// silent past their lease TTL and the lease is gone. Keeps each worker's gRPC client, load
// report, circuit breaker and measured prefill rate. Prefill workers (role PREFILL) are kept
// apart: never routed to, but their KV events feed the index and the router names one in a
// decode worker's Generate (`prefillWorkers()`).
import { createGrpcClient, type GrpcClient, type Logger, type Redis, redisKeys } from '@tandem/common';
import {
  AnnounceKind,
  type LoadReport,
  Role,
  ServingStatus,
  Worker,
  type WorkerAnnounce,
  type WorkerLoad,
} from '@tandem/proto';
import { CircuitBreaker, type CircuitBreakerParams } from './circuit-breaker.ts';

export type WorkerRoleName = 'unified' | 'prefill' | 'decode';

export interface WorkerRecord {
  workerId: string;
  role: WorkerRoleName;
  grpcAddress: string;
  modelName: string;
  pageSize: number;
  /** Bytes of one KV page over all layers, K and V (0: not announced). */
  kvBytesPerPage: number;
  client: GrpcClient<typeof Worker>;
  breaker: CircuitBreaker;
  leaseTtlMs: number;
  lastHeardMs: number;
  load: LoadReport | null;
  loadAtMs: number;
  /** Prefill throughput (tokens/ms), an EWMA of what first tokens took. */
  prefillTokensPerMs: number;
  numPrefillSamples: number;
  /** This router's requests to it without a first token yet, with their expected uncached tokens. */
  pendingPrefills: Map<string, { sentAtMs: number; numTokens: number }>;
  /** This router's requests prefilled lately (to tell them apart in a load report). */
  recentPrefills: { sentAtMs: number; firstTokenAtMs: number; numTokens: number }[];
  /** Queued prefill tokens in its last report that are not this router's (other replicas'). */
  numOthersQueuedPrefillTokens: number;
  /** This router's pick order (0: never picked). */
  lastPickedSeq: number;
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
  defaultPageSize: number;
}

export type RegistryEvent =
  | { type: 'joined'; workerId: string }
  | { type: 'left'; workerId: string; reason: string }
  | { type: 'load'; workerId: string; kvSeq: bigint; startedAtMs: bigint };

const workerIdField = /^tandem:worker:(.+)$/;
const roleNames: Partial<Record<Role, WorkerRoleName>> = {
  [Role.UNIFIED]: 'unified',
  [Role.PREFILL]: 'prefill',
  [Role.DECODE]: 'decode',
};

function kvBytesPerPageOf(layout: WorkerAnnounce['kvLayout']): number {
  if (layout === undefined) return 0;
  return Number(layout.pageBytes) * layout.numLayers * 2;
}
/** How long a finished prefill is remembered for matching against load reports. */
const recentPrefillKeepMs = 3000;
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
  readonly #workers = new Map<string, WorkerRecord>();
  readonly #listeners: ((event: RegistryEvent) => void)[] = [];

  constructor(params: RegistryParams, redis: Redis | null, logger: Logger) {
    this.#params = params;
    this.#redis = redis;
    this.#logger = logger;
  }

  onEvent(listener: (event: RegistryEvent) => void): void {
    this.#listeners.push(listener);
  }

  /** A worker of any role (prefill workers included). */
  get(workerId: string): WorkerRecord | null {
    return this.#workers.get(workerId) ?? null;
  }

  /** The workers requests are routed to (unified and decode). */
  all(): WorkerRecord[] {
    return [...this.#workers.values()].filter((worker) => worker.role !== 'prefill');
  }

  /** The prefill workers a decode worker can be told to use. */
  prefillWorkers(): WorkerRecord[] {
    return [...this.#workers.values()].filter((worker) => worker.role === 'prefill');
  }

  /** Routable workers (unified and decode). */
  get size(): number {
    let count = 0;
    for (const worker of this.#workers.values()) if (worker.role !== 'prefill') count++;
    return count;
  }

  onAnnounce(announce: WorkerAnnounce, nowMs: number): void {
    if (announce.kind === AnnounceKind.LEAVE) {
      this.remove(announce.workerId, 'announced leave');
      return;
    }
    const role = roleNames[announce.role];
    if (role === undefined) return;
    if (!this.#params.modelNames.includes(announce.modelName)) {
      this.#logger.debug('ignoring a worker of another model', {
        workerId: announce.workerId,
        model: announce.modelName,
      });
      return;
    }
    const existing = this.#workers.get(announce.workerId);
    if (existing !== undefined && existing.grpcAddress === announce.grpcAddress && existing.role === role) {
      existing.lastHeardMs = nowMs;
      existing.leaseTtlMs = announce.leaseTtlMs || existing.leaseTtlMs;
      existing.pageSize = announce.kvLayout?.pageSize || existing.pageSize;
      existing.kvBytesPerPage = kvBytesPerPageOf(announce.kvLayout) || existing.kvBytesPerPage;
      return;
    }
    if (existing !== undefined) this.remove(announce.workerId, 'moved to a new address');
    this.#add({
      workerId: announce.workerId,
      role,
      grpcAddress: announce.grpcAddress,
      modelName: announce.modelName,
      pageSize: announce.kvLayout?.pageSize || this.#params.defaultPageSize,
      kvBytesPerPage: kvBytesPerPageOf(announce.kvLayout),
      leaseTtlMs: announce.leaseTtlMs || this.#params.defaultLeaseTtlMs,
      nowMs,
    });
    this.#emit({
      type: 'load',
      workerId: announce.workerId,
      kvSeq: announce.kvSeq,
      startedAtMs: announce.startedAtMs,
    });
  }

  onLoad(report: WorkerLoad, nowMs: number): void {
    const worker = this.#workers.get(report.workerId);
    if (worker === undefined) return;
    worker.load = report.load ?? null;
    worker.loadAtMs = Number(report.timestampMs);
    worker.lastHeardMs = nowMs;
    // The report counts every queued prompt; ours at its timestamp are known exactly (and
    // counted fresh at decision time), so keep only the rest: other replicas' work.
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
    this.#emit({
      type: 'load',
      workerId: report.workerId,
      kvSeq: report.kvSeq,
      startedAtMs: report.startedAtMs,
    });
  }

  /** Reads every lease in Redis (a router that starts after its workers). */
  async discoverFromLeases(nowMs: number): Promise<void> {
    if (this.#redis === null) return;
    let cursor = '0';
    do {
      const [next, keys] = await this.#redis.scan(
        cursor,
        'MATCH',
        redisKeys.workerLeasePattern,
        'COUNT',
        200,
      );
      cursor = next;
      for (const key of keys) {
        const workerId = workerIdField.exec(key)?.[1];
        if (workerId === undefined || this.#workers.has(workerId)) continue;
        const [value, ttlMs] = await Promise.all([this.#redis.get(key), this.#redis.pttl(key)]);
        if (value === null) continue;
        let lease: { grpcAddress?: unknown; modelName?: unknown; role?: unknown };
        try {
          lease = JSON.parse(value) as typeof lease;
        } catch {
          continue;
        }
        if (typeof lease.grpcAddress !== 'string' || typeof lease.modelName !== 'string') continue;
        if (!this.#params.modelNames.includes(lease.modelName)) continue;
        const role = lease.role;
        if (role !== 'unified' && role !== 'decode' && role !== 'prefill') continue;
        const info = await this.#probeInfo(lease.grpcAddress);
        if (info === null || this.#workers.has(workerId)) continue;
        this.#add({
          workerId,
          role,
          grpcAddress: lease.grpcAddress,
          modelName: lease.modelName,
          pageSize: info.pageSize,
          kvBytesPerPage: info.kvBytesPerPage,
          leaseTtlMs: Math.max(ttlMs, this.#params.defaultLeaseTtlMs),
          nowMs,
        });
        this.#emit({ type: 'load', workerId, kvSeq: info.kvSeq, startedAtMs: info.startedAtMs });
      }
    } while (cursor !== '0');
  }

  /** Drops workers silent past their lease TTL whose Redis lease is also gone. */
  async expireSilent(nowMs: number): Promise<void> {
    for (const worker of [...this.#workers.values()]) {
      if (nowMs - worker.lastHeardMs <= worker.leaseTtlMs) continue;
      let leaseAlive = false;
      if (this.#redis !== null) {
        try {
          leaseAlive = (await this.#redis.exists(redisKeys.workerLease(worker.workerId))) === 1;
        } catch {
          leaseAlive = false;
        }
      }
      if (leaseAlive) worker.lastHeardMs = nowMs;
      else this.remove(worker.workerId, `silent for ${nowMs - worker.lastHeardMs} ms and no lease`);
    }
  }

  /**
   * Health checks: a worker whose circuit is open or half-open gets a Health call once its open
   * period is over; SERVING closes the circuit, anything else keeps it open.
   */
  async probeUnhealthy(nowMs: number): Promise<void> {
    const probes = this.all()
      .filter((worker) => worker.breaker.state(nowMs) === 'half_open' && worker.breaker.allows(nowMs))
      .map(async (worker) => {
        worker.breaker.onAttempt(nowMs);
        try {
          const health = await worker.client.health({}, { timeoutMs: 1000 });
          if (health.status === ServingStatus.SERVING) worker.breaker.onSuccess();
          else worker.breaker.onFailure(Date.now());
        } catch {
          worker.breaker.onFailure(Date.now());
        }
      });
    await Promise.all(probes);
  }

  remove(workerId: string, reason: string): void {
    const worker = this.#workers.get(workerId);
    if (worker === undefined) return;
    this.#workers.delete(workerId);
    worker.client.close();
    this.#logger.info('worker left', { workerId, reason });
    this.#emit({ type: 'left', workerId, reason });
  }

  /**
   * The prefill rate a decision should use for the worker: the pool's mean, unless the worker's
   * own measurement differs from it by more than `ownRateFactor` (different hardware). Using the
   * pool's rate otherwise keeps measurement noise from steering all traffic to one worker. The
   * pool is the worker's kind: prefill workers (whose time to first token includes the KV
   * transfer) or the routable ones.
   */
  prefillRateFor(worker: WorkerRecord): number {
    let sum = 0;
    let count = 0;
    const isPrefill = worker.role === 'prefill';
    for (const other of this.#workers.values()) {
      if ((other.role === 'prefill') !== isPrefill) continue;
      if (other.numPrefillSamples > 0) {
        sum += other.prefillTokensPerMs;
        count++;
      }
    }
    const poolRate = count === 0 ? this.#params.defaultPrefillTokensPerMs : sum / count;
    if (worker.numPrefillSamples < minOwnRateSamples) return poolRate;
    const ratio = worker.prefillTokensPerMs / poolRate;
    return ratio > ownRateFactor || ratio < 1 / ownRateFactor ? worker.prefillTokensPerMs : poolRate;
  }

  /** Folds a measured time to first token into the worker's prefill rate (long prompts only). */
  recordPrefill(workerId: string, numUncachedTokens: number, ttftMs: number): void {
    const worker = this.#workers.get(workerId);
    if (worker === undefined || numUncachedTokens < minPrefillSampleTokens || ttftMs <= 0) return;
    const rate = numUncachedTokens / ttftMs;
    // A new worker starts from the pool's rate, so one cold first request does not mark it slow.
    if (worker.numPrefillSamples === 0) worker.prefillTokensPerMs = this.prefillRateFor(worker);
    const alpha = this.#params.prefillRateAlpha;
    worker.prefillTokensPerMs = alpha * rate + (1 - alpha) * worker.prefillTokensPerMs;
    worker.numPrefillSamples++;
  }

  close(): void {
    for (const worker of this.#workers.values()) worker.client.close();
    this.#workers.clear();
  }

  async #probeInfo(
    address: string,
  ): Promise<{ pageSize: number; kvBytesPerPage: number; kvSeq: bigint; startedAtMs: bigint } | null> {
    const client = createGrpcClient(Worker, address);
    try {
      const info = await client.info({}, { timeoutMs: 2000 });
      return {
        pageSize: info.kvLayout?.pageSize || this.#params.defaultPageSize,
        kvBytesPerPage: kvBytesPerPageOf(info.kvLayout),
        kvSeq: info.kvSeq,
        startedAtMs: 0n,
      };
    } catch (error) {
      this.#logger.warn('a leased worker does not answer Info', { address, error });
      return null;
    } finally {
      client.close();
    }
  }

  #add(spec: {
    workerId: string;
    role: WorkerRoleName;
    grpcAddress: string;
    modelName: string;
    pageSize: number;
    kvBytesPerPage: number;
    leaseTtlMs: number;
    nowMs: number;
  }): void {
    this.#workers.set(spec.workerId, {
      workerId: spec.workerId,
      role: spec.role,
      grpcAddress: spec.grpcAddress,
      modelName: spec.modelName,
      pageSize: spec.pageSize,
      kvBytesPerPage: spec.kvBytesPerPage,
      client: createGrpcClient(Worker, spec.grpcAddress),
      breaker: new CircuitBreaker(this.#params.breaker),
      leaseTtlMs: spec.leaseTtlMs,
      lastHeardMs: spec.nowMs,
      load: null,
      loadAtMs: 0,
      prefillTokensPerMs: this.#params.defaultPrefillTokensPerMs,
      numPrefillSamples: 0,
      pendingPrefills: new Map(),
      recentPrefills: [],
      numOthersQueuedPrefillTokens: 0,
      lastPickedSeq: 0,
    });
    this.#logger.info('worker joined', {
      workerId: spec.workerId,
      role: spec.role,
      address: spec.grpcAddress,
    });
    this.#emit({ type: 'joined', workerId: spec.workerId });
  }

  #emit(event: RegistryEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}
