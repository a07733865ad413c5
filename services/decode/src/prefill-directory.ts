// The prefill workers a decode worker knows: common's discovery (WorkerDirectory, role PREFILL,
// same model, fed from the worker's own NATS connection) plus the prompt tokens this decode worker
// has in flight at each. Candidates come ordered by expected wait: queued prefill tokens the
// worker reported plus ours, silent workers last; ties by worker id (deterministic). A worker that stops heartbeating
// for its lease TTL, or announces LEAVE, is dropped.
import {
  followWorkers,
  type Logger,
  type MembershipVerifier,
  type NatsConnection,
  WorkerDirectory,
} from '@tandem/common';

/** Load reports come every second: a worker silent this long is tried last. */
const silentAfterMs = 3500;

interface InFlight {
  /** Prompt tokens this decode worker sent it, not answered yet. */
  numTokens: number;
}

export class PrefillDirectory {
  readonly #directory: WorkerDirectory<InFlight>;
  readonly #unfollow: () => void;

  constructor(options: {
    nc: NatsConnection | null;
    modelName: string;
    pageSize: number;
    logger: Logger;
    /** Membership check of a new prefill worker (null: an open cluster). */
    verify?: MembershipVerifier | null;
  }) {
    this.#directory = new WorkerDirectory<InFlight>(
      {
        modelNames: [options.modelName],
        roles: ['prefill'],
        defaultLeaseTtlMs: 10_000,
        pageSize: options.pageSize,
        verify: options.verify ?? null,
      },
      options.logger,
      () => ({ numTokens: 0 }),
    );
    this.#unfollow =
      options.nc === null ? () => {} : followWorkers(options.nc, this.#directory, options.logger);
  }

  get size(): number {
    return this.#directory.size;
  }

  /** Live prefill workers' gRPC addresses, best first. */
  candidates(nowMs = Date.now()): string[] {
    void this.#directory.expireSilent(nowMs);
    const live = [...this.#directory.entries()].filter(
      ({ worker }) => nowMs - worker.lastHeardMs <= worker.leaseTtlMs,
    );
    const wait = ({ worker, extension }: (typeof live)[number]): number =>
      (worker.load?.numQueuedPrefillTokens ?? 0) + extension.numTokens;
    // A worker whose load reports stopped (a stopped process) goes last.
    const silent = ({ worker }: (typeof live)[number]): number =>
      nowMs - worker.lastHeardMs > silentAfterMs ? 1 : 0;
    live.sort(
      (a, b) =>
        silent(a) - silent(b) ||
        wait(a) - wait(b) ||
        (a.worker.workerId < b.worker.workerId ? -1 : a.worker.workerId > b.worker.workerId ? 1 : 0),
    );
    return live.map(({ worker }) => worker.grpcAddress);
  }

  /** Counts a prompt sent to a worker until the returned `done` is called. */
  track(grpcAddress: string, numTokens: number): () => void {
    const entry = [...this.#directory.entries()].find(({ worker }) => worker.grpcAddress === grpcAddress);
    if (entry === undefined) return () => {};
    entry.extension.numTokens += numTokens;
    return () => {
      entry.extension.numTokens -= numTokens;
    };
  }

  close(): void {
    this.#unfollow();
    this.#directory.clear();
  }
}
