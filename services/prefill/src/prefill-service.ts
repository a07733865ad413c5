// Serves Prefill calls on the shared runtime: a prefill-only request (the engine's prefillOnly
// hook) computes the uncached part of the prompt in chunks, batched with other prefills. A
// chunk's pages go into the decode worker's reserved pages layer by layer, each layer as soon as
// the executor has written it, while the later layers compute; the cached prefix goes at once;
// the commit follows the first token, which is returned. The pages are released when the call
// ends: done, failed, cancelled (the decode worker died or gave up) or past its lease.
import {
  type CallContext,
  endSpan,
  type GrpcServiceImpl,
  InvalidArgumentError,
  PhaseSpans,
  startSpan,
  tracingEnabled,
  UnimplementedError,
} from '@tandem/common';
import { isKvTransferError, type KvSender } from '@tandem/kvtransfer';
import type { MessageInitShape, Prefill, PrefillRequest, PrefillResponseSchema } from '@tandem/proto';
import type { ComputedPages, Engine, SamplingParams, TokenChunk, TokenConstraint } from '@tandem/runtime';
import { type KvTransferMetrics, type OutputConstraints, samplingFromWire } from '@tandem/worker';
import {
  KvDestinationError,
  PrefillCancelledError,
  PrefillLeaseExpiredError,
  PrefillNotCompletedError,
} from './errors.ts';
import type { KvDestinations } from './kv-destinations.ts';
import type { KvSenderPool } from './kv-sender-pool.ts';

/** Where the prompt's KV goes: the decode worker's kvtransfer receiver and its reserved pages. */
interface KvDestination {
  host: string;
  port: number;
  /** The transfer id the receiver expects. */
  transferId: bigint;
  /** Prompt page index of dstPages[0] (pages before it are already on the decode worker). */
  firstPageIndex: number;
  /** Decode-worker page ids for prompt pages firstPageIndex.. in order. */
  dstPages: readonly number[];
  /** Prompt positions [0, numTokens) must be in the destination. */
  numTokens: number;
}

/** One Prefill call as this worker runs it (the wire request, resolved once at the edge). */
interface PrefillJob {
  requestId: string;
  promptTokenIds: readonly number[];
  /** Exactly what the decode worker samples with (the same wire message, resolved the same way). */
  sampling: SamplingParams;
  /** The Generate call's constraint, compiled: the first token is sampled under its mask. */
  constraint: TokenConstraint | null;
  cacheNamespace: string | null;
  destination: KvDestination;
  /** Everything for this request is freed after this long, done or not. */
  leaseMs: number;
}

type PrefillResult = MessageInitShape<typeof PrefillResponseSchema>;

/** What one prefill produced. */
interface PrefillOutcome {
  firstTokenId: number;
  logprob: number;
  topLogprobs: { tokenId: number; logprob: number }[];
  numPromptTokens: number;
  /** Prompt tokens this worker served from its prefix cache. */
  numCachedTokens: number;
  /** Bytes written into the destination pages. */
  bytesSent: number;
  /** Call to admission, admission to first token, first token to D's commit ack (ms). */
  queueMs: number;
  computeMs: number;
  kvTailMs: number;
}

export interface PrefillServiceStats {
  numPrefills: number; // completed, KV delivered
  numFailed: number;
  numBytesSent: number;
  /** Sends of one layer's pages made while later layers computed (or right after the pass). */
  numLayerSends: number;
  numPromptTokens: number;
  numCachedTokens: number;
}

export class PrefillService {
  readonly stats: PrefillServiceStats = {
    numPrefills: 0,
    numFailed: 0,
    numBytesSent: 0,
    numLayerSends: 0,
    numPromptTokens: 0,
    numCachedTokens: 0,
  };
  private readonly engine: Engine;
  private readonly senders: KvSenderPool;
  private readonly destinations: KvDestinations | null;
  private readonly constraints: OutputConstraints | null;
  private readonly running = new Map<string, AbortController>();
  private readonly transfers: KvTransferMetrics | null;
  private nextCallId = 0;

  /** `destinations`: where KV may go (null: anywhere, for an in-process pair that owns both ends). */
  constructor(options: {
    engine: Engine;
    senders: KvSenderPool;
    destinations?: KvDestinations | null;
    metrics?: KvTransferMetrics | null;
    /** Compiles requests' output constraints (null: constrained prompts are refused). */
    constraints?: OutputConstraints | null;
  }) {
    this.engine = options.engine;
    this.senders = options.senders;
    this.destinations = options.destinations ?? null;
    this.transfers = options.metrics ?? null;
    this.constraints = options.constraints ?? null;
  }

  get numRunning(): number {
    return this.running.size;
  }

  abortAll(): void {
    for (const controller of this.running.values()) controller.abort();
  }

  implementation(): GrpcServiceImpl<typeof Prefill> {
    return {
      prefill: async (request, context) => {
        const job = await this.#toJob(request);
        // Checked before anything connects: a caller cannot make this worker dial a third party.
        await this.destinations?.check(job.destination.host, job.destination.port, context.peer);
        return this.handle(job, context);
      },
    };
  }

  /** The wire request resolved once: sampling as the decode worker resolves it, fields checked. */
  async #toJob(request: PrefillRequest): Promise<PrefillJob> {
    const dest = request.destination;
    if (dest === undefined) {
      throw new InvalidArgumentError('a Prefill call needs a destination', { param: 'destination' });
    }
    return {
      requestId: request.requestId,
      promptTokenIds: request.promptTokenIds,
      sampling: samplingFromWire(request.sampling, request.topLogprobs, this.engine.modelInfo),
      constraint: request.constraint === undefined ? null : await this.#compile(request.constraint),
      cacheNamespace: request.cacheNamespace ?? null,
      destination: {
        host: dest.host,
        port: dest.port,
        transferId: dest.transferId,
        firstPageIndex: dest.firstPageIndex,
        dstPages: dest.dstPages,
        numTokens: dest.numTokens,
      },
      leaseMs: request.leaseMs,
    };
  }

  /** Compiled off the engine's thread, before the prompt is queued. */
  #compile(wire: NonNullable<PrefillRequest['constraint']>): Promise<TokenConstraint> {
    if (this.constraints === null) {
      return Promise.reject(
        new UnimplementedError('this prefill worker does not decode with constraints', {
          param: 'constraint',
        }),
      );
    }
    return this.constraints.compile(wire);
  }

  async handle(request: PrefillJob, context: CallContext): Promise<PrefillResult> {
    const controller = new AbortController();
    const onCancel = (): void => controller.abort();
    context.signal.addEventListener('abort', onCancel, { once: true });
    let expired = false;
    const leaseTimer = setTimeout(() => {
      expired = true;
      controller.abort();
    }, request.leaseMs);
    // The decode worker's id plus a call number: a retried request never collides with itself.
    const engineRequestId = `${request.requestId}#p${this.nextCallId++}`;
    this.running.set(engineRequestId, controller);
    // Phases as child spans of the Prefill server span: queue -> compute -> commit.
    const phases = new PhaseSpans('tandem.queue', {
      'tandem.request.id': request.requestId,
      'gen_ai.usage.input_tokens': request.promptTokenIds.length,
    });
    let failure: unknown = null;
    try {
      const outcome = await this.run(
        request,
        engineRequestId,
        controller.signal,
        Date.now() + request.leaseMs,
        phases,
      );
      this.stats.numPrefills++;
      this.stats.numBytesSent += outcome.bytesSent;
      this.stats.numPromptTokens += outcome.numPromptTokens;
      this.stats.numCachedTokens += outcome.numCachedTokens;
      return { ...outcome, bytesSent: BigInt(outcome.bytesSent) };
    } catch (error) {
      this.stats.numFailed++;
      failure = error;
      if (expired) {
        throw new PrefillLeaseExpiredError(
          `prefill ${request.requestId} outlived its ${request.leaseMs} ms lease`,
          {
            cause: error,
          },
        );
      }
      if (controller.signal.aborted) {
        throw new PrefillCancelledError(`prefill ${request.requestId} cancelled`, { cause: error });
      }
      throw error;
    } finally {
      phases.end(failure);
      clearTimeout(leaseTimer);
      context.signal.removeEventListener('abort', onCancel);
      this.running.delete(engineRequestId);
    }
  }

  private async run(
    request: PrefillJob,
    engineRequestId: string,
    signal: AbortSignal,
    deadline: number,
    phases: PhaseSpans,
  ): Promise<PrefillOutcome> {
    const calledAt = performance.now();
    let admittedAt = calledAt;
    const dest = request.destination;
    const numPromptTokens = request.promptTokenIds.length;
    const pageSize = this.engine.pageSize;
    const endPageIndex = dest.firstPageIndex + dest.dstPages.length;
    if (dest.numTokens !== numPromptTokens || Math.ceil(numPromptTokens / pageSize) !== endPageIndex) {
      throw new RangeError(
        `destination pages [${dest.firstPageIndex}, ${endPageIndex}) do not cover the ${numPromptTokens}-token prompt`,
      );
    }
    const transferId = dest.transferId;
    let sender: KvSender;
    try {
      sender = await this.senders.get(dest.host, dest.port);
    } catch (error) {
      throw new KvDestinationError(`cannot reach the KV receiver at ${dest.host}:${dest.port}`, {
        cause: error,
      });
    }
    // Pages [firstPageIndex, endPageIndex) go out as their positions get computed: a step's full
    // pages (all pages once the prompt is done) layer by layer during the step, whatever layers
    // are left right after it; the commit (after every send landed) closes the transfer.
    const numLayers = sender.spec.numLayers;
    let nextPage = dest.firstPageIndex; // pages before it are at D, every layer
    let stepEndPage = nextPage; // the step in flight sends pages [nextPage, stepEndPage) ...
    let stepLayersSent = new Set<number>(); // ... of these layers so far
    let pageTable: readonly number[] = [];
    let finished = false;
    const sends: Promise<number>[] = [];
    const transfers = this.transfers;
    let transferStartedAt: number | null = null;
    const traced = tracingEnabled();
    const endPageAt = (endPos: number): number =>
      endPos >= numPromptTokens ? endPageIndex : Math.min(Math.floor(endPos / pageSize), endPageIndex);
    const sendPages = (endPage: number, layers: number[] | null, commit: boolean): Promise<number> => {
      if (transferStartedAt === null) {
        transferStartedAt = performance.now();
        transfers?.inFlight.inc();
      }
      // One span per push (per layer while the step computes): what the KV rode on, and when.
      const span = traced
        ? startSpan(commit ? 'tandem.kv.commit' : 'tandem.kv.push', {
            parent: phases.context,
            attributes: {
              'tandem.kv.layers': layers === null ? 'all' : layers.join(','),
              'tandem.kv.pages': endPage - nextPage,
              'tandem.kv.destination': `${dest.host}:${dest.port}`,
            },
          })
        : null;
      const send = sender.sendPages({
        transferId,
        srcPages: pageTable.slice(nextPage, endPage),
        dstPages: dest.dstPages.slice(nextPage - dest.firstPageIndex, endPage - dest.firstPageIndex),
        layers,
        commit,
        timeoutMs: Math.max(1, deadline - Date.now()),
      });
      send.catch(() => undefined); // awaited below; never an unhandled rejection
      if (span !== null) {
        send.then(
          (bytes) => {
            span.setAttribute('tandem.kv.bytes', bytes);
            endSpan(span);
          },
          (error: unknown) => endSpan(span, error),
        );
      }
      return send;
    };
    const onLayerComputed = (pages: ComputedPages, layer: number): void => {
      const endPage = endPageAt(pages.endPos);
      if (finished || endPage <= nextPage) return;
      if (endPage !== stepEndPage) {
        stepEndPage = endPage;
        stepLayersSent = new Set();
      }
      if (stepLayersSent.has(layer)) return;
      pageTable = pages.pageTable;
      sends.push(sendPages(endPage, [layer], false));
      stepLayersSent.add(layer);
      this.stats.numLayerSends++;
    };
    const onComputed = (pages: ComputedPages): void => {
      pageTable = pages.pageTable;
      const endPage = endPageAt(pages.endPos);
      if (finished || endPage <= nextPage) return;
      const layersLeft =
        endPage === stepEndPage
          ? Array.from({ length: numLayers }, (_, l) => l).filter((l) => !stepLayersSent.has(l))
          : null; // none went layer by layer (the cached prefix): all of them
      if (layersLeft === null || layersLeft.length > 0) sends.push(sendPages(endPage, layersLeft, false));
      nextPage = endPage;
      stepEndPage = endPage;
      stepLayersSent = new Set();
    };
    let first: TokenChunk | null = null;
    try {
      const stream = this.engine.generate(
        {
          requestId: engineRequestId,
          promptTokenIds: request.promptTokenIds,
          sampling: request.sampling,
          maxTokens: 1,
          minTokens: 0,
          stopTokenIds: [],
          ignoreEos: true,
          n: 1,
          logprobs: true,
          cacheNamespace: request.cacheNamespace,
          constraint: request.constraint,
        },
        signal,
        {
          prefillOnly: { onComputed, onLayerComputed },
          onAdmitted: (numCachedTokens) => {
            admittedAt = performance.now();
            phases.next('tandem.prefill.compute', { 'tandem.cached_tokens': numCachedTokens });
          },
        },
      );
      for await (const chunk of stream) {
        if (chunk.tokenIds.length > 0 && first === null) first = chunk;
      }
      const computedAt = performance.now();
      phases.next('tandem.kv.finish');
      if (first === null || signal.aborted) {
        throw new PrefillNotCompletedError(`prefill ${request.requestId} ended without a first token`);
      }
      let bytesSent = 0;
      for (const bytes of await Promise.all(sends)) bytesSent += bytes;
      bytesSent += await sendPages(endPageIndex, null, true); // pages left (none, normally) + commit
      if (transfers !== null && transferStartedAt !== null) {
        transfers.bytes.inc(bytesSent);
        transfers.seconds.observe((performance.now() - transferStartedAt) / 1000);
      }
      return {
        firstTokenId: first.tokenIds[0]!,
        logprob: first.logprobs?.[0] ?? 0,
        topLogprobs: first.topLogprobs?.[0] ?? [],
        numPromptTokens,
        numCachedTokens: first.numCachedTokens,
        bytesSent,
        queueMs: admittedAt - calledAt,
        computeMs: computedAt - admittedAt,
        kvTailMs: performance.now() - computedAt,
      };
    } catch (error) {
      if (transfers !== null && transferStartedAt !== null) transfers.failures.inc();
      sender.abort(transferId);
      if (isKvTransferError(error)) {
        if (error.reason !== 'kv_aborted' && error.reason !== 'kv_out_of_bounds') {
          this.senders.discard(dest.host, dest.port, sender);
        }
        throw new KvDestinationError(`KV transfer to ${dest.host}:${dest.port} failed: ${error.message}`, {
          cause: error,
        });
      }
      throw error;
    } finally {
      if (transfers !== null && transferStartedAt !== null) transfers.inFlight.inc(-1);
      finished = true;
      // Sends still in flight (after a failure) must not read pages that are being reused.
      await Promise.allSettled(sends);
      this.engine.releasePrefill(engineRequestId);
    }
  }
}
