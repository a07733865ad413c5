// The Prefill call's messages on the wire: protobuf (proto/tandem/prefill/v1/prefill.proto)
// <-> the plain interfaces the services use. The conversions keep null apart from empty and
// every number exact (doubles for sampling parameters and logprobs), so P samples the first
// token exactly as D would have.
import {
  create,
  fromBinary,
  type PrefillRequest,
  PrefillRequestSchema,
  type PrefillResponse,
  PrefillResponseSchema,
  type Sampling,
  SamplingSchema,
  toBinary,
} from '@tandem/proto';
import type { PrefillRequestWire, PrefillResponseWire, SamplingWire } from './prefill-rpc.ts';

function toSamplingMessage(wire: SamplingWire): Sampling {
  return create(SamplingSchema, {
    temperature: wire.temperature,
    topK: wire.topK,
    topP: wire.topP,
    minP: wire.minP,
    repetitionPenalty: wire.repetitionPenalty,
    frequencyPenalty: wire.frequencyPenalty,
    presencePenalty: wire.presencePenalty,
    logitBias: wire.logitBias === null ? undefined : { bias: Object.fromEntries(wire.logitBias) },
    seed: wire.seed === null ? undefined : BigInt(wire.seed),
    numTopLogprobs: wire.numTopLogprobs,
    allowedTokenIds: wire.allowedTokenIds === null ? undefined : { ids: wire.allowedTokenIds },
  });
}

function fromSamplingMessage(message: Sampling | undefined): SamplingWire {
  if (message === undefined) throw new RangeError('prefill request without sampling parameters');
  return {
    temperature: message.temperature,
    topK: message.topK,
    topP: message.topP,
    minP: message.minP,
    repetitionPenalty: message.repetitionPenalty,
    frequencyPenalty: message.frequencyPenalty,
    presencePenalty: message.presencePenalty,
    logitBias:
      message.logitBias === undefined
        ? null
        : Object.entries(message.logitBias.bias).map(([id, bias]): [number, number] => [Number(id), bias]),
    seed: message.seed === undefined ? null : Number(message.seed),
    numTopLogprobs: message.numTopLogprobs,
    allowedTokenIds: message.allowedTokenIds === undefined ? null : [...message.allowedTokenIds.ids],
  };
}

export function encodePrefillRequest(wire: PrefillRequestWire): Buffer {
  const dest = wire.destination;
  const message: PrefillRequest = create(PrefillRequestSchema, {
    requestId: wire.requestId,
    promptTokenIds: wire.promptTokenIds,
    sampling: toSamplingMessage(wire.sampling),
    cacheNamespace: wire.cacheNamespace ?? undefined,
    destination: {
      host: dest.host,
      port: dest.port,
      transferId: BigInt(dest.transferId),
      firstPageIndex: dest.firstPageIndex,
      dstPages: dest.dstPages,
      numTokens: dest.numTokens,
    },
    leaseMs: wire.leaseMs,
  });
  return Buffer.from(toBinary(PrefillRequestSchema, message));
}

export function decodePrefillRequest(bytes: Buffer): PrefillRequestWire {
  const message = fromBinary(PrefillRequestSchema, bytes);
  const dest = message.destination;
  if (dest === undefined) throw new RangeError('prefill request without a KV destination');
  return {
    requestId: message.requestId,
    promptTokenIds: [...message.promptTokenIds],
    sampling: fromSamplingMessage(message.sampling),
    cacheNamespace: message.cacheNamespace ?? null,
    destination: {
      host: dest.host,
      port: dest.port,
      transferId: dest.transferId.toString(),
      firstPageIndex: dest.firstPageIndex,
      dstPages: [...dest.dstPages],
      numTokens: dest.numTokens,
    },
    leaseMs: message.leaseMs,
  };
}

export function encodePrefillResponse(wire: PrefillResponseWire): Buffer {
  const message: PrefillResponse = create(PrefillResponseSchema, {
    firstTokenId: wire.firstTokenId,
    logprob: wire.logprob,
    topLogprobs: wire.topLogprobs.map(({ tokenId, logprob }) => ({ tokenId, logprob })),
    numPromptTokens: wire.numPromptTokens,
    numCachedTokens: wire.numCachedTokens,
    bytesSent: BigInt(wire.bytesSent),
  });
  return Buffer.from(toBinary(PrefillResponseSchema, message));
}

export function decodePrefillResponse(bytes: Buffer): PrefillResponseWire {
  const message = fromBinary(PrefillResponseSchema, bytes);
  return {
    firstTokenId: message.firstTokenId,
    logprob: message.logprob,
    topLogprobs: message.topLogprobs.map(({ tokenId, logprob }) => ({ tokenId, logprob })),
    numPromptTokens: message.numPromptTokens,
    numCachedTokens: message.numCachedTokens,
    bytesSent: Number(message.bytesSent),
  };
}
