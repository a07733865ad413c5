// The decode -> prefill control call: one unary gRPC method, /tandem.prefill.v1.Prefill/Prefill,
// its messages protobuf (proto/tandem/prefill/v1/prefill.proto, converted in prefill-codec.ts);
// the services see the interfaces below. Bulk KV never travels here: it goes through kvtransfer.
import { type CallContext, fromServiceError, grpc, toServiceError } from '@tandem/common';
import type { SamplingParams } from '@tandem/executor';
import {
  decodePrefillRequest,
  decodePrefillResponse,
  encodePrefillRequest,
  encodePrefillResponse,
} from './prefill-codec.ts';

/** Where the prompt's KV goes: the decode worker's kvtransfer receiver and its reserved pages. */
export interface KvDestination {
  host: string;
  port: number;
  /** The transfer id the receiver expects. */
  transferId: bigint;
  /** Prompt page index of dstPages[0] (pages before it are already on the decode worker). */
  firstPageIndex: number;
  /** Decode-worker page ids for prompt pages firstPageIndex.. in order. */
  dstPages: number[];
  /** Prompt positions [0, numTokens) must be in the destination (the decode worker computes the rest). */
  numTokens: number;
}

export interface PrefillRequestWire {
  requestId: string;
  promptTokenIds: number[];
  /** Exactly what the decode worker would sample the first token with. */
  sampling: SamplingParams;
  cacheNamespace: string | null;
  destination: KvDestination;
  /** The prefill worker frees everything for this request after this long, done or not. */
  leaseMs: number;
}

export interface PrefillResponseWire {
  firstTokenId: number;
  logprob: number;
  topLogprobs: { tokenId: number; logprob: number }[];
  numPromptTokens: number;
  /** Prompt tokens the prefill worker served from its prefix cache. */
  numCachedTokens: number;
  /** Bytes written into the destination pages. */
  bytesSent: number;
}

export const prefillServiceDefinition: grpc.ServiceDefinition = {
  prefill: {
    path: '/tandem.prefill.v1.Prefill/Prefill',
    originalName: 'Prefill',
    requestStream: false,
    responseStream: false,
    requestSerialize: encodePrefillRequest,
    requestDeserialize: decodePrefillRequest,
    responseSerialize: encodePrefillResponse,
    responseDeserialize: decodePrefillResponse,
  },
};

export type PrefillHandler = (
  request: PrefillRequestWire,
  context: CallContext,
) => Promise<PrefillResponseWire>;

/** Adds the Prefill service to a grpc-js server; a thrown TandemError fails the call with its code. */
export function addPrefillService(server: grpc.Server, handler: PrefillHandler): void {
  server.addService(prefillServiceDefinition, {
    prefill: (
      call: grpc.ServerUnaryCall<PrefillRequestWire, PrefillResponseWire>,
      callback: grpc.sendUnaryData<PrefillResponseWire>,
    ) => {
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      handler(call.request, {
        signal: controller.signal,
        metadata: call.metadata,
        peer: call.getPeer(),
      }).then(
        (response) => callback(null, response),
        (error: unknown) => callback(toServiceError(error)),
      );
    },
  });
}

const PrefillClientConstructor = grpc.makeGenericClientConstructor(prefillServiceDefinition, 'Prefill');

/** A client of one prefill worker. */
export class PrefillClient {
  readonly address: string;
  private readonly client: grpc.Client;

  constructor(address: string) {
    this.address = address;
    this.client = new PrefillClientConstructor(address, grpc.credentials.createInsecure());
  }

  /** Rejects with the server's TandemError class; aborting `signal` cancels the call. */
  prefill(
    request: PrefillRequestWire,
    options: { signal: AbortSignal; timeoutMs: number },
  ): Promise<PrefillResponseWire> {
    return new Promise((resolve, reject) => {
      const call = this.client.makeUnaryRequest<PrefillRequestWire, PrefillResponseWire>(
        prefillServiceDefinition.prefill!.path,
        encodePrefillRequest,
        decodePrefillResponse,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + options.timeoutMs },
        (error, response) => {
          options.signal.removeEventListener('abort', onAbort);
          if (error !== null || response === undefined) reject(fromServiceError(error, this.address));
          else resolve(response);
        },
      );
      const onAbort = (): void => call.cancel();
      if (options.signal.aborted) call.cancel();
      else options.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  close(): void {
    this.client.close();
  }
}
