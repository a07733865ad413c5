// Where a prefill worker may push KV (issue 18, defect 6: the Prefill RPC connected to any
// destination a caller supplied, a request-forgery risk): only the kvtransfer receivers decode
// workers announced, through common's discovery (verified members only, when the cluster has a
// secret or TLS). A prefill worker without NATS discovers nobody: it pushes only to the caller's
// own host (a decode worker naming its own receiver), never to a third party.
import {
  followWorkers,
  type Logger,
  type MembershipVerifier,
  type NatsConnection,
  PermissionDeniedError,
  WorkerDirectory,
} from '@tandem/common';

/** A Prefill call names a KV receiver no decode worker announced. */
export class UnknownDestinationError extends PermissionDeniedError {
  constructor(message: string) {
    super(message, { reason: 'prefill_destination_unknown', param: 'destination' });
  }
}

/**
 * Announcements come every heartbeat (2 s by default) and a new worker is verified before it is
 * known: a destination unknown in the first moments after start may be a decode worker not heard
 * yet, so the answer waits until then.
 */
const warmUpMs = 5000;

/** The host of host:port, [v6]:port or a gRPC peer string, without an IPv4-mapped prefix. */
function hostOf(address: string): string {
  const colon = address.lastIndexOf(':');
  const host = (colon === -1 ? address : address.slice(0, colon)).replace(/^\[|\]$/g, '');
  return host.replace(/^::ffff:/, '');
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export class KvDestinations {
  readonly #directory: WorkerDirectory | null;
  readonly #unfollow: () => void;
  readonly #startedAtMs = Date.now();

  constructor(options: {
    nc: NatsConnection | null;
    modelName: string;
    pageSize: number;
    logger: Logger;
    /** Membership check of a new decode worker (null: an open cluster). */
    verify: MembershipVerifier | null;
  }) {
    if (options.nc === null) {
      this.#directory = null;
      this.#unfollow = () => {};
      return;
    }
    this.#directory = new WorkerDirectory(
      {
        modelNames: [options.modelName],
        roles: ['decode'],
        defaultLeaseTtlMs: 10_000,
        pageSize: options.pageSize,
        verify: options.verify,
      },
      options.logger,
      () => ({}),
    );
    this.#unfollow = followWorkers(options.nc, this.#directory, options.logger);
  }

  /** Resolves when the caller (gRPC peer `peer`) may have KV pushed to host:port; else throws. */
  async check(host: string, port: number, peer: string): Promise<void> {
    const address = `${host}:${port}`;
    if (this.#directory === null) {
      const peerHost = hostOf(peer);
      const sameHost = hostOf(address) === peerHost || (isLoopback(host) && isLoopback(peerHost));
      if (sameHost) return;
      throw new UnknownDestinationError(
        `a prefill worker without discovery pushes KV only to its caller's host, not to ${address}`,
      );
    }
    // Unknown in the first moments after start: maybe a decode worker not heard from yet.
    while (!this.#knows(address)) {
      if (Date.now() >= this.#startedAtMs + warmUpMs) {
        throw new UnknownDestinationError(`no decode worker announced a KV receiver at ${address}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  close(): void {
    this.#unfollow();
    this.#directory?.clear();
  }

  #knows(address: string): boolean {
    for (const { worker } of this.#directory?.entries() ?? []) if (worker.kvAddress === address) return true;
    return false;
  }
}
