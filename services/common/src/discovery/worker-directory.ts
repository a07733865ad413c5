// The one discovery library: the workers of a model, from their NATS announcements (join,
// heartbeat, leave) and load reports, their Redis leases (a process that starts after its workers
// reads them), and expiry of workers that fell silent. The router keeps its routing state in each
// entry's extension (worker-registry.ts); a decode worker keeps its view of prefill workers the
// same way (prefill-directory.ts). Discovery fields change only here; extensions only through
// their owner's methods.
//
// One page size per model: the first worker of the model fixes it (or the owner names it); a
// worker that announces another is refused with a log line, since its block hashes would never
// match the router's.
import { AnnounceKind, type LoadReport, Role, type WorkerAnnounce, type WorkerLoad } from '@tandem/proto';
import type { Logger } from '../logger.ts';
import type { MembershipVerifier } from './membership.ts';

export type DiscoveredRole = 'unified' | 'prefill' | 'decode';

/** What discovery knows of a worker. */
export interface DiscoveredWorker {
  readonly workerId: string;
  readonly role: DiscoveredRole;
  readonly grpcAddress: string;
  /** host:port of its Prometheus endpoint (GET /metrics), or null when it announced none. */
  readonly metricsAddress: string | null;
  readonly modelName: string;
  /** Tokens per KV page (the model's). */
  readonly pageSize: number;
  /** Bytes of one KV page over all layers, K and V (0: not announced). */
  readonly kvBytesPerPage: number;
  /** Decode role: its kvtransfer receiver's host:port ('' otherwise, or not announced). */
  readonly kvAddress: string;
  readonly leaseTtlMs: number;
  /** When it was last heard from (announcement or load report), this process's clock. */
  readonly lastHeardMs: number;
  /** Its last load report, or null before the first. */
  readonly load: LoadReport | null;
  /** The report's own timestamp (the worker's clock), 0 before the first. */
  readonly loadAtMs: number;
}

/** A new worker as its announcement or lease describes it. */
export interface WorkerSighting {
  workerId: string;
  role: DiscoveredRole;
  grpcAddress: string;
  metricsAddress: string | null;
  modelName: string;
  pageSize: number;
  kvBytesPerPage: number;
  /** Decode role: its kvtransfer receiver (default ''). */
  kvAddress?: string;
  leaseTtlMs: number;
}

export type DirectoryEvent =
  | { type: 'joined'; workerId: string }
  | { type: 'left'; workerId: string; reason: string }
  /** Announcement or load report: the worker is at KV-event `kvSeq` of incarnation `startedAtMs`. */
  | { type: 'load'; workerId: string; kvSeq: bigint; startedAtMs: bigint };

export interface DirectoryParams {
  /** Model names accepted (a served name and its aliases). */
  modelNames: readonly string[];
  /** Roles kept (others are ignored). */
  roles: readonly DiscoveredRole[];
  /** Used when an announcement or lease does not say (ms). */
  defaultLeaseTtlMs: number;
  /** The model's page size when known up front; null: the first worker's. */
  pageSize: number | null;
  /**
   * A new worker (or one at a new address) is used only once this resolves true (membership.ts);
   * absent or null: at once (an open cluster).
   */
  verify?: MembershipVerifier | null;
}

/** A worker that failed verification is not asked again for this long (its heartbeats go on). */
const refusedForMs = 10_000;

const roleNames: Partial<Record<Role, DiscoveredRole>> = {
  [Role.UNIFIED]: 'unified',
  [Role.PREFILL]: 'prefill',
  [Role.DECODE]: 'decode',
};

/** The role of an announcement (null for one this version does not know). */
export function roleOf(role: Role): DiscoveredRole | null {
  return roleNames[role] ?? null;
}

/** Bytes of one page over all layers, K and V, from an announced KV layout (0: none). */
export function kvBytesPerPageOf(layout: WorkerAnnounce['kvLayout']): number {
  if (layout === undefined) return 0;
  return Number(layout.pageBytes) * layout.numLayers * 2;
}

interface Entry<X> {
  worker: Mutable<DiscoveredWorker>;
  extension: X;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class WorkerDirectory<X = Record<never, never>> {
  readonly #params: DirectoryParams;
  readonly #logger: Logger;
  readonly #extend: (worker: DiscoveredWorker) => X;
  readonly #release: (worker: DiscoveredWorker, extension: X) => void;
  readonly #entries = new Map<string, Entry<X>>();
  readonly #listeners: ((event: DirectoryEvent) => void)[] = [];
  #pageSize: number | null;
  /** Sightings being verified, and those refused lately (until when), by id@address. */
  readonly #verifying = new Set<string>();
  readonly #refusedUntil = new Map<string, number>();

  /**
   * `extend` makes the owner's state for a new worker (kept beside the discovery fields);
   * `release` undoes it when the worker leaves.
   */
  constructor(
    params: DirectoryParams,
    logger: Logger,
    extend: (worker: DiscoveredWorker) => X,
    release: (worker: DiscoveredWorker, extension: X) => void = () => {},
  ) {
    this.#params = params;
    this.#logger = logger;
    this.#extend = extend;
    this.#release = release;
    this.#pageSize = params.pageSize;
  }

  /** The model's page size: fixed by the owner or the first worker; null until then. */
  get pageSize(): number | null {
    return this.#pageSize;
  }

  get size(): number {
    return this.#entries.size;
  }

  onEvent(listener: (event: DirectoryEvent) => void): void {
    this.#listeners.push(listener);
  }

  has(workerId: string): boolean {
    return this.#entries.has(workerId);
  }

  /** The discovery record and the owner's extension of a worker, or null. */
  entry(workerId: string): { worker: DiscoveredWorker; extension: X } | null {
    return this.#entries.get(workerId) ?? null;
  }

  /** Every known worker with its extension, in join order. */
  *entries(): IterableIterator<{ worker: DiscoveredWorker; extension: X }> {
    yield* this.#entries.values();
  }

  onAnnounce(announce: WorkerAnnounce, nowMs: number): void {
    if (announce.kind === AnnounceKind.LEAVE) {
      this.remove(announce.workerId, 'announced leave');
      return;
    }
    const role = roleOf(announce.role);
    if (role === null || !this.#params.roles.includes(role)) return;
    if (!this.#params.modelNames.includes(announce.modelName)) {
      this.#logger.debug('ignoring a worker of another model', {
        workerId: announce.workerId,
        model: announce.modelName,
      });
      return;
    }
    const pageSize = announce.kvLayout?.pageSize || this.#pageSize || 0;
    const existing = this.#entries.get(announce.workerId);
    if (
      existing !== undefined &&
      existing.worker.grpcAddress === announce.grpcAddress &&
      existing.worker.role === role
    ) {
      existing.worker.lastHeardMs = nowMs;
      existing.worker.leaseTtlMs = announce.leaseTtlMs || existing.worker.leaseTtlMs;
      existing.worker.metricsAddress = announce.metricsAddress || existing.worker.metricsAddress;
      return;
    }
    const sighting: WorkerSighting = {
      workerId: announce.workerId,
      role,
      grpcAddress: announce.grpcAddress,
      metricsAddress: announce.metricsAddress === '' ? null : announce.metricsAddress,
      modelName: announce.modelName,
      pageSize,
      kvBytesPerPage: kvBytesPerPageOf(announce.kvLayout),
      kvAddress: announce.kvAddress,
      leaseTtlMs: announce.leaseTtlMs || this.#params.defaultLeaseTtlMs,
    };
    const verify = this.#params.verify ?? null;
    if (verify === null) {
      this.#adopt(sighting, announce, nowMs);
      return;
    }
    // A worker joins (or moves) only once it proved membership; until then the old entry stays.
    const key = `${sighting.workerId}@${sighting.grpcAddress}`;
    if (this.#verifying.has(key) || (this.#refusedUntil.get(key) ?? 0) > nowMs) return;
    this.#verifying.add(key);
    void verify(sighting).then((proven) => {
      this.#verifying.delete(key);
      if (!proven) {
        this.#refusedUntil.set(key, Date.now() + refusedForMs);
        this.#logger.warn('refusing a worker that did not prove membership', {
          workerId: sighting.workerId,
          address: sighting.grpcAddress,
        });
        return;
      }
      this.#refusedUntil.delete(key);
      const current = this.#entries.get(sighting.workerId);
      if (current?.worker.grpcAddress === sighting.grpcAddress && current.worker.role === role) return;
      this.#adopt(sighting, announce, Date.now());
    });
  }

  /** Adds an announced worker (replacing its entry at another address) and reports its KV seq. */
  #adopt(sighting: WorkerSighting, announce: WorkerAnnounce, nowMs: number): void {
    if (this.#entries.has(sighting.workerId)) this.remove(sighting.workerId, 'moved to a new address');
    if (this.add(sighting, nowMs)) {
      this.#emit({
        type: 'load',
        workerId: announce.workerId,
        kvSeq: announce.kvSeq,
        startedAtMs: announce.startedAtMs,
      });
    }
  }

  onLoad(report: WorkerLoad, nowMs: number): void {
    const entry = this.#entries.get(report.workerId);
    if (entry === undefined) return;
    entry.worker.load = report.load ?? null;
    entry.worker.loadAtMs = Number(report.timestampMs);
    entry.worker.lastHeardMs = nowMs;
    this.#emit({
      type: 'load',
      workerId: report.workerId,
      kvSeq: report.kvSeq,
      startedAtMs: report.startedAtMs,
    });
  }

  /**
   * Adds a worker seen through an announcement or a lease; false (and a log line) when it is
   * refused: a page size other than the model's.
   */
  add(sighting: WorkerSighting, nowMs: number): boolean {
    if (this.#pageSize !== null && sighting.pageSize !== this.#pageSize) {
      this.#logger.warn("refusing a worker whose KV page size differs from the model's", {
        workerId: sighting.workerId,
        address: sighting.grpcAddress,
        workerPageSize: sighting.pageSize,
        modelPageSize: this.#pageSize,
        fix: `start it with --page-size ${this.#pageSize}`,
      });
      return false;
    }
    this.#pageSize ??= sighting.pageSize;
    const worker: Mutable<DiscoveredWorker> = {
      ...sighting,
      kvAddress: sighting.kvAddress ?? '',
      lastHeardMs: nowMs,
      load: null,
      loadAtMs: 0,
    };
    this.#entries.set(sighting.workerId, { worker, extension: this.#extend(worker) });
    this.#logger.info('worker joined', {
      workerId: sighting.workerId,
      role: sighting.role,
      address: sighting.grpcAddress,
    });
    this.#emit({ type: 'joined', workerId: sighting.workerId });
    return true;
  }

  /** Reports where a worker's KV events are (found other than by announcement: an Info call). */
  noteKvSeq(workerId: string, kvSeq: bigint, startedAtMs: bigint): void {
    if (this.#entries.has(workerId)) this.#emit({ type: 'load', workerId, kvSeq, startedAtMs });
  }

  /** Marks a worker heard from now (its lease is alive though it was silent). */
  touch(workerId: string, nowMs: number): void {
    const entry = this.#entries.get(workerId);
    if (entry !== undefined) entry.worker.lastHeardMs = nowMs;
  }

  /**
   * Drops workers silent past their lease TTL, unless `leaseAlive` says their Redis lease still
   * stands (then they count as heard from now).
   */
  async expireSilent(
    nowMs: number,
    leaseAlive: (workerId: string) => Promise<boolean> = async () => false,
  ): Promise<void> {
    for (const { worker } of [...this.#entries.values()]) {
      if (nowMs - worker.lastHeardMs <= worker.leaseTtlMs) continue;
      let alive = false;
      try {
        alive = await leaseAlive(worker.workerId);
      } catch {
        alive = false;
      }
      if (alive) this.touch(worker.workerId, nowMs);
      else this.remove(worker.workerId, `silent for ${nowMs - worker.lastHeardMs} ms and no lease`);
    }
  }

  remove(workerId: string, reason: string): void {
    const entry = this.#entries.get(workerId);
    if (entry === undefined) return;
    this.#entries.delete(workerId);
    this.#release(entry.worker, entry.extension);
    this.#logger.info('worker left', { workerId, reason });
    this.#emit({ type: 'left', workerId, reason });
  }

  /** Forgets every worker (releasing their extensions), without events. */
  clear(): void {
    for (const entry of this.#entries.values()) this.#release(entry.worker, entry.extension);
    this.#entries.clear();
  }

  #emit(event: DirectoryEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}
