// The Prefill call's messages on the wire: protobuf (proto/tandem/prefill/v1/prefill.proto)
// <-> the plain interfaces the services use. The conversions keep null apart from empty and
// every number exact (doubles for sampling parameters and logprobs), so P samples the first
// token exactly as D would have.

import type { SamplingParams } from '@tandem/executor';
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
import type { PrefillRequestWire, PrefillResponseWire } from './prefill-rpc.ts';

function toSamplingMessage(sampling: SamplingParams): Sampling {
  return create(SamplingSchema, {
    temperature: sampling.temperature,
    topK: sampling.topK,
    topP: sampling.topP,
    minP: sampling.minP,
    repetitionPenalty: sampling.repetitionPenalty,
    frequencyPenalty: sampling.frequencyPenalty,
    presencePenalty: sampling.presencePenalty,
    logitBias: sampling.logitBias === null ? undefined : { bias: Object.fromEntries(sampling.logitBias) },
    seed: sampling.seed === null ? undefined : BigInt(sampling.seed),
    numTopLogprobs: sampling.numTopLogprobs,
    allowedTokenIds: sampling.allowedTokenIds === null ? undefined : { ids: [...sampling.allowedTokenIds] },
  });
}

function fromSamplingMessage(message: Sampling | undefined): SamplingParams {
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
        : new Map(Object.entries(message.logitBias.bias).map(([id, bias]) => [Number(id), bias])),
    seed: message.seed === undefined ? null : Number(message.seed),
    numTopLogprobs: message.numTopLogprobs,
    allowedTokenIds:
      message.allowedTokenIds === undefined ? null : Int32Array.from(message.allowedTokenIds.ids),
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
      transferId: dest.transferId,
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
      transferId: dest.transferId,
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
