// The prefill workers a decode worker knows, from the NATS announcements (role PREFILL, same
// model) and their load reports. Candidates come ordered by expected wait: queued prefill tokens
// the worker reported plus the prompt tokens this decode worker has in flight there; ties by
// worker id (deterministic). A worker that stops heartbeating for its lease TTL, or announces
// LEAVE, is dropped.
import type { Logger, NatsConnection, Subscription } from '@tandem/common';
import { subjects } from '@tandem/common';
import { AnnounceKind, fromBinary, Role, WorkerAnnounceSchema, WorkerLoadSchema } from '@tandem/proto';

interface PrefillWorker {
  workerId: string;
  grpcAddress: string;
  lastHeardMs: number;
  leaseTtlMs: number;
  numQueuedPrefillTokens: number; // from its last load report
  numInflightTokens: number; // prompt tokens this decode worker sent it, not answered yet
}

export class PrefillDirectory {
  private readonly modelName: string;
  private readonly logger: Logger | null;
  private readonly workers = new Map<string, PrefillWorker>();
  private readonly subscriptions: Subscription[] = [];

  constructor(options: { nc: NatsConnection | null; modelName: string; logger?: Logger | null }) {
    this.modelName = options.modelName;
    this.logger = options.logger ?? null;
    const nc = options.nc;
    if (nc === null) return;
    this.subscriptions.push(
      nc.subscribe(subjects.announce, {
        callback: (error, message) => {
          if (error === null) this.onAnnounceBytes(message.data);
        },
      }),
      nc.subscribe(subjects.loadAll, {
        callback: (error, message) => {
          if (error !== null) return;
          try {
            const report = fromBinary(WorkerLoadSchema, message.data);
            const worker = this.workers.get(report.workerId);
            if (worker !== undefined)
              worker.numQueuedPrefillTokens = report.load?.numQueuedPrefillTokens ?? 0;
          } catch {
            // not ours to judge; the router logs bad reports
          }
        },
      }),
    );
  }

  get size(): number {
    return this.workers.size;
  }

  onAnnounceBytes(bytes: Uint8Array, nowMs = Date.now()): void {
    let announce: ReturnType<typeof fromBinary<typeof WorkerAnnounceSchema>>;
    try {
      announce = fromBinary(WorkerAnnounceSchema, bytes);
    } catch {
      return;
    }
    if (announce.kind === AnnounceKind.LEAVE) {
      this.workers.delete(announce.workerId);
      return;
    }
    if (announce.role !== Role.PREFILL || announce.modelName !== this.modelName) return;
    const known = this.workers.get(announce.workerId);
    if (known !== undefined && known.grpcAddress === announce.grpcAddress) {
      known.lastHeardMs = nowMs;
      return;
    }
    this.workers.set(announce.workerId, {
      workerId: announce.workerId,
      grpcAddress: announce.grpcAddress,
      lastHeardMs: nowMs,
      leaseTtlMs: announce.leaseTtlMs || 10_000,
      numQueuedPrefillTokens: 0,
      numInflightTokens: 0,
    });
    this.logger?.info('prefill worker joined', {
      workerId: announce.workerId,
      grpcAddress: announce.grpcAddress,
    });
  }

  /** Live prefill workers' gRPC addresses, best first. */
  candidates(nowMs = Date.now()): string[] {
    const live: PrefillWorker[] = [];
    for (const worker of this.workers.values()) {
      if (nowMs - worker.lastHeardMs > worker.leaseTtlMs) this.workers.delete(worker.workerId);
      else live.push(worker);
    }
    live.sort(
      (a, b) =>
        a.numQueuedPrefillTokens + a.numInflightTokens - (b.numQueuedPrefillTokens + b.numInflightTokens) ||
        (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0),
    );
    return live.map((worker) => worker.grpcAddress);
  }

  /** Counts a prompt sent to a worker until `done` is called. */
  track(grpcAddress: string, numTokens: number): () => void {
    const worker = [...this.workers.values()].find((w) => w.grpcAddress === grpcAddress);
    if (worker === undefined) return () => {};
    worker.numInflightTokens += numTokens;
    return () => {
      worker.numInflightTokens -= numTokens;
    };
  }

  close(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.subscriptions.length = 0;
  }
}
