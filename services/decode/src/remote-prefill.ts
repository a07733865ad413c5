// The decode worker's half of disaggregation. It owns a kvtransfer receiver on the engine's KV
// pool and builds the engine's remotePrefill hook for a request: when the engine has reserved the
// prompt's pages, announce a transfer, ask a prefill worker (gRPC Prefill) to compute the prompt
// and write positions [numCachedTokens, numPromptTokens) into those pages, and hand the engine the
// first token once the transfer is committed. A failed prefill worker is replaced by the next
// candidate; when none is left the hook rejects and the engine prefills locally.
// Contract kept for the engine: fill() settles only when nothing writes into the pages any more
// (a failed or cancelled transfer is released, which drops its late frames, before it rejects).
import {
  activeSpan,
  type ClientOptions,
  createGrpcClient,
  FailedPreconditionError,
  type GrpcClient,
  type Logger,
  TimeoutError,
} from '@tandem/common';
import {
  KvReceiver,
  type KvTransport,
  MemoryRegion,
  newTransferId,
  specFromLayout,
} from '@tandem/kvtransfer';
import {
  type OutputConstraint,
  Prefill,
  type PrefillResponse,
  type SamplingParams,
  ServingStatus,
  Worker,
} from '@tandem/proto';
import type { Engine, FirstToken, GenerateHooks, GenerateRequest, PrefillReservation } from '@tandem/runtime';
import type { KvTransferMetrics, PrefillDecision } from '@tandem/worker';
import type { PrefillDirectory } from './prefill-directory.ts';

/** Not anyone's failure: the engine prefills this prompt locally (it is short, or cached here). */
class BelowThresholdError extends FailedPreconditionError {
  constructor(numUncached: number, threshold: number) {
    super(`${numUncached} uncached prompt tokens, below the disaggregation threshold ${threshold}`);
  }
}

/** The prefill worker landed no KV for a while and did not answer a health check: it stalled. */
class PrefillStalledError extends TimeoutError {
  constructor(address: string, stallMs: number) {
    super(`prefill worker ${address} landed no KV for ${stallMs} ms and did not answer a health check`, {
      reason: 'prefill_stalled',
    });
  }
}

/**
 * The sampling a prefill worker samples the first token with: the Generate call's own wire
 * message, passed on as received (the prefill worker resolves it exactly as this worker did).
 */
export interface PrefillSampling {
  sampling: SamplingParams | undefined;
  topLogprobs: number;
  /** The Generate call's constraint: P samples the first token under its mask. */
  constraint?: OutputConstraint | undefined;
}

export interface RemotePrefillOptions {
  engine: Engine;
  /** Checkpoint identity checked in the kvtransfer handshake (both sides must agree). */
  modelName: string;
  /** Interface the receiver binds (default 127.0.0.1) and the host prefill workers dial. */
  kvHost?: string;
  kvAdvertiseHost?: string;
  /** 0 picks a free port. */
  kvPort?: number;
  /** One prefill (compute + transfer) may take this long before it is given up (default 30 s). */
  leaseMs?: number;
  /**
   * A prefill worker that lands no KV for this long gets a health check; one that does not answer
   * it (a stopped process) is given up at once, long before the lease (default 2 s; 0: never).
   */
  stallMs?: number;
  /**
   * Prefill workers found through discovery: used when a request carries no decision (then the
   * prompt goes to one only when at least disaggThreshold of its tokens are not cached here; 0:
   * always), and after the workers a request names have failed.
   */
  directory?: PrefillDirectory | null;
  disaggThreshold?: number;
  /** TLS and the cluster token for the calls to prefill workers (default plaintext, no token). */
  clientOptions?: ClientOptions;
  logger?: Logger | null;
  /** The worker's KV-transfer series (direction receive), or null. */
  metrics?: KvTransferMetrics | null;
}

export interface RemotePrefillStats {
  numRemotePrefills: number; // prompts whose KV came from a prefill worker
  numAttemptsFailed: number; // prefill worker attempts that failed (then: next one, or local)
  numFallbacks: number; // prompts prefilled locally after every candidate failed
  numBelowThreshold: number; // prompts prefilled locally: too few uncached tokens to send out
  numLocalByRequest: number; // prompts prefilled locally because the request (router) said so
  numBytesReceived: number;
  /** Committed remote prefills by the transport that carried their KV (no silent fallback). */
  transfersByTransport: Record<KvTransport, number>;
}

export class RemotePrefillHost {
  readonly stats: RemotePrefillStats = {
    numRemotePrefills: 0,
    numAttemptsFailed: 0,
    numFallbacks: 0,
    numBelowThreshold: 0,
    numLocalByRequest: 0,
    numBytesReceived: 0,
    transfersByTransport: { tcp: 0, cuda_ipc: 0, nccl: 0, rdma: 0 },
  };
  readonly receiver: KvReceiver;
  /** host:port prefill workers write KV to. */
  readonly kvEndpoint: { host: string; port: number };
  private readonly engine: Engine;
  private readonly leaseMs: number;
  private readonly stallMs: number;
  private readonly logger: Logger | null;
  private readonly clients = new Map<string, GrpcClient<typeof Prefill>>();
  private readonly healthClients = new Map<string, GrpcClient<typeof Worker>>();
  private readonly directory: PrefillDirectory | null;
  private readonly disaggThreshold: number;
  private readonly transfers: KvTransferMetrics | null;
  private readonly clientOptions: ClientOptions;
  private closed = false;

  constructor(options: RemotePrefillOptions) {
    this.engine = options.engine;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.stallMs = options.stallMs ?? 2000;
    this.logger = options.logger ?? null;
    this.directory = options.directory ?? null;
    this.disaggThreshold = options.disaggThreshold ?? 0;
    this.transfers = options.metrics ?? null;
    this.clientOptions = options.clientOptions ?? {};
    const layout = options.engine.kvLayout;
    this.receiver = new KvReceiver({
      host: options.kvHost ?? '127.0.0.1',
      port: options.kvPort ?? 0,
      spec: specFromLayout(options.modelName, layout),
      region: MemoryRegion.fromKvLayout(layout),
    });
    this.receiver.onEvent((event) => {
      if (event.type === 'completed') this.#carriedBy.set(event.transferId, event.transport);
    });
    this.kvEndpoint = {
      host: options.kvAdvertiseHost ?? options.kvHost ?? '127.0.0.1',
      port: this.receiver.port,
    };
  }

  /**
   * The engine hooks for `request` under the router's decision (`choice`):
   * - remote: the named workers (gRPC host:port, in order), then the discovered ones the request
   *   did not name (a named worker that fails is replaced), then a local prefill;
   * - local: none (the engine prefills here; no prefill worker is asked);
   * - undecided (a client that is not the router): the directory's candidates when the uncached
   *   part of the prompt reaches the threshold (decided at reservation, when this engine's cache
   *   hit is known), else local.
   */
  hooksFor(request: GenerateRequest, choice: PrefillDecision, sampling: PrefillSampling): GenerateHooks {
    if (choice.type === 'local') {
      this.stats.numLocalByRequest++;
      return {};
    }
    if (choice.type === 'remote') {
      return {
        remotePrefill: {
          fill: (reservation, signal) => {
            const named = choice.addresses;
            const discovered = (this.directory?.candidates() ?? []).filter((a) => !named.includes(a));
            return this.fill(request, sampling, [...named, ...discovered], reservation, signal);
          },
        },
      };
    }
    if (this.directory === null || this.directory.size === 0) return {};
    return {
      remotePrefill: {
        fill: (reservation, signal) => {
          const numUncached = reservation.numPromptTokens - reservation.numCachedTokens;
          const candidates = this.directory?.candidates() ?? [];
          if (numUncached < this.disaggThreshold || candidates.length === 0) {
            this.stats.numBelowThreshold++;
            return Promise.reject(new BelowThresholdError(numUncached, this.disaggThreshold));
          }
          return this.fill(request, sampling, candidates, reservation, signal);
        },
      },
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.directory?.close();
    this.receiver.close();
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
    for (const client of this.healthClients.values()) client.close();
    this.healthClients.clear();
  }

  private healthClient(address: string): GrpcClient<typeof Worker> {
    let client = this.healthClients.get(address);
    if (client === undefined) {
      client = createGrpcClient(Worker, address, this.clientOptions);
      this.healthClients.set(address, client);
    }
    return client;
  }

  /**
   * Watches a transfer while it runs: when no KV lands for stallMs, asks the prefill worker's
   * Health; no answer within a second (a stopped process, a dead host) aborts the attempt with a
   * PrefillStalledError, so the next candidate (or a local prefill) takes over. Returns the stop.
   */
  private watchStall(address: string, transferId: bigint, controller: AbortController): () => void {
    if (this.stallMs <= 0) return () => {};
    let landed = 0;
    let quietSinceMs = Date.now();
    let checking = false;
    const timer = setInterval(
      () => {
        const bytes = this.receiver.bytesReceived(transferId);
        const nowMs = Date.now();
        if (bytes !== landed) {
          landed = bytes;
          quietSinceMs = nowMs;
          return;
        }
        if (checking || nowMs - quietSinceMs < this.stallMs) return;
        checking = true;
        this.healthClient(address)
          .health({}, { timeoutMs: 1000, signal: controller.signal })
          .then(
            (health) => health.status === ServingStatus.SERVING,
            () => false,
          )
          .then((alive) => {
            checking = false;
            if (alive)
              quietSinceMs = Date.now(); // alive, just busy: watch another period
            else if (!controller.signal.aborted)
              controller.abort(new PrefillStalledError(address, this.stallMs));
          });
      },
      Math.max(50, Math.floor(this.stallMs / 4)),
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  private client(address: string): GrpcClient<typeof Prefill> {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = createGrpcClient(Prefill, address, this.clientOptions);
      this.clients.set(address, client);
    }
    return client;
  }

  private async fill(
    request: GenerateRequest,
    sampling: PrefillSampling,
    addresses: readonly string[],
    reservation: PrefillReservation,
    signal: AbortSignal,
  ): Promise<FirstToken> {
    let lastError: unknown = null;
    for (const address of addresses) {
      if (signal.aborted || this.closed) break;
      const untrack = this.directory?.track(address, reservation.numPromptTokens) ?? (() => {});
      const startedAt = performance.now();
      try {
        const response = await this.attempt(request, sampling, address, reservation, signal);
        this.stats.numRemotePrefills++;
        this.transfers?.seconds.observe((performance.now() - startedAt) / 1000);
        activeSpan().setAttributes({
          'tandem.prefill.worker': address,
          'tandem.prefill.cached_tokens': response.numCachedTokens,
          'tandem.kv.bytes': Number(response.bytesSent),
        });
        this.logger?.info('remote prefill done', {
          requestId: request.requestId,
          prefill: address,
          numPromptTokens: reservation.numPromptTokens,
          numCachedHere: reservation.numCachedTokens,
          numCachedThere: response.numCachedTokens,
          bytes: Number(response.bytesSent),
          transport: response.transport,
          // What disaggregation adds to TTFT: the whole remote prefill as D saw it, and P's parts.
          ms: round2(performance.now() - startedAt),
          prefillQueueMs: round2(response.queueMs),
          prefillComputeMs: round2(response.computeMs),
          prefillKvTailMs: round2(response.kvTailMs),
        });
        if (response.transport !== null) this.stats.transfersByTransport[response.transport]++;
        this.stats.numBytesReceived += Number(response.bytesSent);
        return {
          tokenId: response.firstTokenId,
          logprob: response.logprob,
          topLogprobs: response.topLogprobs.map(({ tokenId, logprob }) => ({ tokenId, logprob })),
        };
      } catch (error) {
        lastError = error;
        this.stats.numAttemptsFailed++;
        if (!signal.aborted) this.transfers?.failures.inc();
        this.logger?.warn('remote prefill failed', {
          requestId: request.requestId,
          prefill: address,
          error: error instanceof Error ? error.message : String(error),
        });
      } finally {
        untrack();
      }
    }
    if (!signal.aborted) this.stats.numFallbacks++;
    throw lastError ?? new Error('no prefill worker tried');
  }

  /** One prefill worker, one transfer; settles only when nothing writes into the pages any more. */
  /** The transport that carried a committed transfer (from the receiver's completed event). */
  readonly #carriedBy = new Map<bigint, KvTransport>();

  private async attempt(
    request: GenerateRequest,
    sampling: PrefillSampling,
    address: string,
    reservation: PrefillReservation,
    signal: AbortSignal,
  ): Promise<PrefillResponse & { transport: KvTransport | null }> {
    const pageSize = this.engine.pageSize;
    const firstPageIndex = reservation.numCachedTokens / pageSize;
    if (!Number.isInteger(firstPageIndex)) throw new RangeError('cached prefix is not page aligned');
    const endPageIndex = Math.ceil(reservation.numPromptTokens / pageSize);
    const transferId = newTransferId();
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const landed = this.receiver.expect(transferId, this.leaseMs);
    const call = this.client(address).prefill(
      {
        requestId: request.requestId,
        promptTokenIds: [...request.promptTokenIds],
        ...(sampling.sampling === undefined ? {} : { sampling: sampling.sampling }),
        topLogprobs: sampling.topLogprobs,
        ...(sampling.constraint === undefined ? {} : { constraint: sampling.constraint }),
        ...(request.cacheNamespace === null ? {} : { cacheNamespace: request.cacheNamespace }),
        destination: {
          host: this.kvEndpoint.host,
          port: this.kvEndpoint.port,
          transferId,
          firstPageIndex,
          dstPages: reservation.pageTable.slice(firstPageIndex, endPageIndex),
          numTokens: reservation.numPromptTokens,
        },
        leaseMs: this.leaseMs,
      },
      { signal: controller.signal, timeoutMs: this.leaseMs },
    );
    const onAbortRelease = (): void => void this.receiver.release(transferId);
    controller.signal.addEventListener('abort', onAbortRelease, { once: true });
    const stopWatch = this.watchStall(address, transferId, controller);
    try {
      const [, response] = await Promise.all([landed, call]);
      return { ...response, transport: this.#carriedBy.get(transferId) ?? null };
    } catch (error) {
      const stalled: unknown = controller.signal.reason;
      controller.abort(); // the prefill worker stops and frees its pages
      throw stalled instanceof PrefillStalledError ? stalled : error;
    } finally {
      stopWatch();
      signal.removeEventListener('abort', onAbort);
      this.#carriedBy.delete(transferId);
      // Committed transfers are already closed; anything else: wait until no frame lands.
      await this.receiver.release(transferId);
    }
  }

  /** Transfers into this worker's pages now in flight and the bytes they have landed so far. */
  transferProgress(): { numTransfers: number; numBytes: number } {
    return this.receiver.progress();
  }
}

function round2(ms: number): number {
  return Math.round(ms * 100) / 100;
}
