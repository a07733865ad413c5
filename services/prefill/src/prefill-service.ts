// Serves Prefill calls on the shared runtime: a prefill-only request (the engine's prefillOnly
// hook) computes the uncached part of the prompt in chunks, batched with other prefills; each
// chunk's finished pages go into the decode worker's reserved pages while the next chunk
// computes; the last page goes with the commit; the first token is returned. The pages are
// released when the call ends: done, failed, cancelled (the decode worker died or gave up) or
// past its lease.
import type { CallContext } from '@tandem/common';
import { type KvSender, KvTransferError } from '@tandem/kvtransfer';
import type { ComputedPages, Engine, TokenChunk } from '@tandem/runtime';
import {
  KvDestinationError,
  PrefillCancelledError,
  PrefillLeaseExpiredError,
  PrefillNotCompletedError,
} from './errors.ts';
import type { KvSenderPool } from './kv-sender-pool.ts';
import { fromSamplingWire, type PrefillRequestWire, type PrefillResponseWire } from './prefill-rpc.ts';

export interface PrefillServiceStats {
  numPrefills: number; // completed, KV delivered
  numFailed: number;
  numBytesSent: number;
  numPromptTokens: number;
  numCachedTokens: number;
}

export class PrefillService {
  readonly stats: PrefillServiceStats = {
    numPrefills: 0,
    numFailed: 0,
    numBytesSent: 0,
    numPromptTokens: 0,
    numCachedTokens: 0,
  };
  private readonly engine: Engine;
  private readonly senders: KvSenderPool;
  private readonly running = new Map<string, AbortController>();
  private nextCallId = 0;

  constructor(options: { engine: Engine; senders: KvSenderPool }) {
    this.engine = options.engine;
    this.senders = options.senders;
  }

  get numRunning(): number {
    return this.running.size;
  }

  abortAll(): void {
    for (const controller of this.running.values()) controller.abort();
  }

  handle = async (request: PrefillRequestWire, context: CallContext): Promise<PrefillResponseWire> => {
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
    try {
      const response = await this.run(
        request,
        engineRequestId,
        controller.signal,
        Date.now() + request.leaseMs,
      );
      this.stats.numPrefills++;
      this.stats.numBytesSent += response.bytesSent;
      this.stats.numPromptTokens += response.numPromptTokens;
      this.stats.numCachedTokens += response.numCachedTokens;
      return response;
    } catch (error) {
      this.stats.numFailed++;
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
      clearTimeout(leaseTimer);
      context.signal.removeEventListener('abort', onCancel);
      this.running.delete(engineRequestId);
    }
  };

  private async run(
    request: PrefillRequestWire,
    engineRequestId: string,
    signal: AbortSignal,
    deadline: number,
  ): Promise<PrefillResponseWire> {
    const dest = request.destination;
    const numPromptTokens = request.promptTokenIds.length;
    const pageSize = this.engine.pageSize;
    const endPageIndex = dest.firstPageIndex + dest.dstPages.length;
    if (dest.numTokens !== numPromptTokens || Math.ceil(numPromptTokens / pageSize) !== endPageIndex) {
      throw new RangeError(
        `destination pages [${dest.firstPageIndex}, ${endPageIndex}) do not cover the ${numPromptTokens}-token prompt`,
      );
    }
    const transferId = BigInt(dest.transferId);
    let sender: KvSender;
    try {
      sender = await this.senders.get(dest.host, dest.port);
    } catch (error) {
      throw new KvDestinationError(`cannot reach the KV receiver at ${dest.host}:${dest.port}`, {
        cause: error,
      });
    }
    // Pages [firstPageIndex, endPageIndex) go out as their positions get computed: full pages after
    // each chunk, the last (maybe partial) page at the end, with the commit.
    let nextPage = dest.firstPageIndex;
    let pageTable: readonly number[] = [];
    const sends: Promise<number>[] = [];
    const sendPages = (endPage: number, commit: boolean): Promise<number> => {
      const send = sender.sendPages({
        transferId,
        srcPages: pageTable.slice(nextPage, endPage),
        dstPages: dest.dstPages.slice(nextPage - dest.firstPageIndex, endPage - dest.firstPageIndex),
        layers: null,
        commit,
        timeoutMs: Math.max(1, deadline - Date.now()),
      });
      nextPage = endPage;
      send.catch(() => undefined); // awaited below; never an unhandled rejection
      return send;
    };
    const onComputed = (pages: ComputedPages): void => {
      pageTable = pages.pageTable;
      const endPage = Math.min(Math.floor(pages.endPos / pageSize), endPageIndex);
      if (endPage > nextPage) sends.push(sendPages(endPage, false));
    };
    let first: TokenChunk | null = null;
    try {
      const stream = this.engine.generate(
        {
          requestId: engineRequestId,
          promptTokenIds: request.promptTokenIds,
          sampling: fromSamplingWire(request.sampling),
          maxTokens: 1,
          minTokens: 0,
          stopTokenIds: [],
          ignoreEos: true,
          n: 1,
          logprobs: true,
          cacheNamespace: request.cacheNamespace,
        },
        signal,
        { prefillOnly: { onComputed } },
      );
      for await (const chunk of stream) {
        if (chunk.tokenIds.length > 0 && first === null) first = chunk;
      }
      if (first === null || signal.aborted) {
        throw new PrefillNotCompletedError(`prefill ${request.requestId} ended without a first token`);
      }
      let bytesSent = 0;
      for (const bytes of await Promise.all(sends)) bytesSent += bytes;
      bytesSent += await sendPages(endPageIndex, true);
      return {
        firstTokenId: first.tokenIds[0]!,
        logprob: first.logprobs?.[0] ?? 0,
        topLogprobs: first.topLogprobs?.[0] ?? [],
        numPromptTokens,
        numCachedTokens: first.numCachedTokens,
        bytesSent,
      };
    } catch (error) {
      sender.abort(transferId);
      if (error instanceof KvTransferError) {
        if (error.code !== 'aborted' && error.code !== 'out_of_bounds') {
          this.senders.discard(dest.host, dest.port, sender);
        }
        throw new KvDestinationError(`KV transfer to ${dest.host}:${dest.port} failed: ${error.message}`, {
          cause: error,
        });
      }
      throw error;
    } finally {
      // Sends still in flight (after a failure) must not read pages that are being reused.
      await Promise.allSettled(sends);
      this.engine.releasePrefill(engineRequestId);
    }
  }
}
