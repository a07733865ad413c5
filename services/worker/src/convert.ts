// Wire <-> engine conversions, with the validation a worker owes its callers: a bad field is an
// InvalidArgumentError naming the field (snake_case, as on the wire).
import { InvalidArgumentError } from '@tandem/common';
import {
  type BlockDumpChunkSchema,
  type CachedBlockSchema,
  FinishReason,
  type GenerateResponseSchema,
  type KvEventSchema,
  type KvLayoutSchema,
  type LoadReportSchema,
  type MessageInitShape,
  type GenerateRequest as WireGenerateRequest,
  type KvLayout as WireKvLayout,
  type SamplingParams as WireSamplingParams,
} from '@tandem/proto';
import type { BlockDump, GenerateRequest, KvEvent, LoadReport, TokenChunk } from '@tandem/runtime';
import type { KvLayout, SamplingParams } from './engine-port.ts';
import type { StepCostFit } from './step-cost.ts';

export interface RequestLimits {
  vocabSize: number;
  /** Prompt plus generated tokens may not exceed this. */
  maxModelLen: number;
  maxN: number;
  maxTopLogprobs: number;
}

function invalid(param: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError(message, { param });
}

function finite(value: number, param: string): number {
  if (!Number.isFinite(value)) throw invalid(param, `${param} must be a finite number`);
  return value;
}

/** The engine request for a validated wire request. */
export function toEngineRequest(request: WireGenerateRequest, limits: RequestLimits): GenerateRequest {
  if (request.requestId.length === 0) throw invalid('request_id', 'request_id is required');
  const prompt = request.promptTokenIds;
  if (prompt.length === 0) throw invalid('prompt_token_ids', 'prompt_token_ids must not be empty');
  for (const id of prompt) {
    if (id >= limits.vocabSize) {
      throw invalid(
        'prompt_token_ids',
        `token id ${id} is outside the vocabulary (size ${limits.vocabSize})`,
      );
    }
  }
  if (request.maxTokens < 1) throw invalid('max_tokens', 'max_tokens must be at least 1');
  if (prompt.length + request.maxTokens > limits.maxModelLen) {
    throw invalid(
      'max_tokens',
      `prompt (${prompt.length} tokens) plus max_tokens (${request.maxTokens}) exceeds the model's ` +
        `context length ${limits.maxModelLen}`,
    );
  }
  if (request.minTokens > request.maxTokens) throw invalid('min_tokens', 'min_tokens must be <= max_tokens');
  const n = request.n === 0 ? 1 : request.n;
  if (n > limits.maxN) throw invalid('n', `n must be <= ${limits.maxN}`);
  if (request.topLogprobs > limits.maxTopLogprobs) {
    throw invalid('top_logprobs', `top_logprobs must be <= ${limits.maxTopLogprobs}`);
  }
  if (request.topLogprobs > 0 && !request.logprobs) {
    throw invalid('top_logprobs', 'top_logprobs needs logprobs');
  }
  for (const id of request.stopTokenIds) {
    if (id >= limits.vocabSize)
      throw invalid('stop_token_ids', `stop token id ${id} is outside the vocabulary`);
  }
  return {
    requestId: request.requestId,
    promptTokenIds: prompt,
    sampling: samplingFromWire(request.sampling, request.logprobs ? request.topLogprobs : 0, limits),
    maxTokens: request.maxTokens,
    minTokens: request.minTokens,
    stopTokenIds: request.stopTokenIds,
    ignoreEos: request.ignoreEos,
    n,
    logprobs: request.logprobs,
    cacheNamespace: request.cacheNamespace ?? null,
    // request.constraint is compiled asynchronously (constraints.ts), then set by the service.
    constraint: null,
  };
}

/**
 * The executor's sampling parameters for the wire message: the one conversion, at the worker's
 * edge (Generate on any worker, Prefill on a prefill worker: both resolve the same message the same
 * way, so a prefill worker samples the first token exactly as the decode worker would).
 */
export function samplingFromWire(
  wire: WireSamplingParams | undefined,
  numTopLogprobs: number,
  limits: Pick<RequestLimits, 'vocabSize'>,
): SamplingParams {
  const temperature = finite(wire?.temperature ?? 1, 'temperature');
  if (temperature < 0) throw invalid('temperature', 'temperature must be >= 0');
  const topP = finite(wire?.topP ?? 1, 'top_p');
  if (!(topP > 0 && topP <= 1)) throw invalid('top_p', 'top_p must be in (0, 1]');
  const topK = wire?.topK ?? 0;
  if (topK < -1) throw invalid('top_k', 'top_k must be -1, 0 (off) or positive');
  const minP = finite(wire?.minP ?? 0, 'min_p');
  if (minP < 0 || minP > 1) throw invalid('min_p', 'min_p must be in [0, 1]');
  const repetitionPenalty = finite(wire?.repetitionPenalty ?? 1, 'repetition_penalty');
  if (repetitionPenalty <= 0) throw invalid('repetition_penalty', 'repetition_penalty must be > 0');
  const frequencyPenalty = finite(wire?.frequencyPenalty ?? 0, 'frequency_penalty');
  const presencePenalty = finite(wire?.presencePenalty ?? 0, 'presence_penalty');
  let logitBias: Map<number, number> | null = null;
  for (const [key, bias] of Object.entries(wire?.logitBias ?? {})) {
    const tokenId = Number(key);
    if (tokenId >= limits.vocabSize)
      throw invalid('logit_bias', `logit_bias token id ${tokenId} is outside the vocabulary`);
    logitBias ??= new Map();
    logitBias.set(tokenId, finite(bias, 'logit_bias'));
  }
  return {
    temperature,
    topK,
    topP,
    minP,
    repetitionPenalty,
    frequencyPenalty,
    presencePenalty,
    logitBias,
    // The executor draws from a 53-bit seed; wider seeds keep their low bits.
    seed: wire?.seed === undefined ? null : Number(BigInt.asUintN(53, wire.seed)),
    numTopLogprobs,
    allowedTokenIds: null,
    // A constrained request's mask changes every step: the runtime sets it per step from the
    // request's constraint (GenerateRequest.constraint), not here.
    allowedTokenMask: null,
  };
}

const finishReasons = {
  stop: FinishReason.STOP,
  length: FinishReason.LENGTH,
  abort: FinishReason.ABORT,
} as const;

/** One engine chunk as one stream message. */
export function toGenerateResponse(chunk: TokenChunk): MessageInitShape<typeof GenerateResponseSchema> {
  return {
    choices: [
      {
        index: chunk.choiceIndex,
        tokenIds: chunk.tokenIds,
        logprobs: chunk.logprobs ?? [],
        topLogprobs: (chunk.topLogprobs ?? []).map((entries) => ({ entries })),
        finishReason:
          chunk.finishReason === null ? FinishReason.UNSPECIFIED : finishReasons[chunk.finishReason],
        ...(chunk.matchedStopTokenId === null ? {} : { matchedStopTokenId: chunk.matchedStopTokenId }),
      },
    ],
    numPromptTokens: chunk.numPromptTokens,
    numCachedTokens: chunk.numCachedTokens,
  };
}

/** The engine's load plus the worker's fitted step costs (null before enough steps). */
export function toWireLoad(
  load: LoadReport,
  stepCost: StepCostFit | null = null,
): MessageInitShape<typeof LoadReportSchema> {
  return {
    ...load,
    ...(stepCost === null ? {} : { stepCost }),
  } satisfies MessageInitShape<typeof LoadReportSchema>;
}

export function toWireKvLayout(layout: KvLayout): MessageInitShape<typeof KvLayoutSchema> {
  return {
    pageSize: layout.pageSize,
    numPages: layout.numPages,
    numLayers: layout.numLayers,
    numKvHeads: layout.numKvHeads,
    headDim: layout.headDim,
    dtype: layout.dtype,
    pageBytes: BigInt(layout.pageBytes),
  } satisfies Omit<WireKvLayout, '$typeName'>;
}

export function toWireKvEvent(event: KvEvent): MessageInitShape<typeof KvEventSchema> {
  const seq = BigInt(event.seq);
  switch (event.type) {
    case 'stored':
      return {
        seq,
        event: {
          case: 'stored',
          value: {
            namespace: event.namespace,
            blocks: event.blocks.map((block) => ({
              hash: block.hash,
              numTokens: block.numTokens,
              ...(block.parentHash === null ? {} : { parentHash: block.parentHash }),
            })),
          },
        },
      };
    case 'removed':
      return { seq, event: { case: 'removed', value: { namespace: event.namespace, hashes: event.hashes } } };
    case 'cleared':
      return { seq, event: { case: 'cleared', value: {} } };
  }
}

/** Number of blocks an event carries (to keep NATS messages well under the 1 MiB payload limit). */
export function kvEventSize(event: KvEvent): number {
  return event.type === 'stored' ? event.blocks.length : event.type === 'removed' ? event.hashes.length : 1;
}

export const defaultBlocksPerDumpChunk = 16_384;

/** A dump as chunks of at most maxBlocksPerChunk blocks (at least one chunk, even when empty). */
export function toDumpChunks(
  workerId: string,
  startedAtMs: number,
  dump: BlockDump,
  maxBlocksPerChunk: number,
): MessageInitShape<typeof BlockDumpChunkSchema>[] {
  const perChunk = maxBlocksPerChunk > 0 ? maxBlocksPerChunk : defaultBlocksPerDumpChunk;
  const numChunks = Math.max(1, Math.ceil(dump.blocks.length / perChunk));
  const chunks: MessageInitShape<typeof BlockDumpChunkSchema>[] = [];
  for (let index = 0; index < numChunks; index++) {
    const blocks: MessageInitShape<typeof CachedBlockSchema>[] = dump.blocks
      .slice(index * perChunk, (index + 1) * perChunk)
      .map((block) => ({
        namespace: block.namespace,
        hash: block.hash,
        ...(block.parentHash === null ? {} : { parentHash: block.parentHash }),
      }));
    chunks.push({
      workerId,
      seq: BigInt(dump.seq),
      chunkIndex: index,
      numChunks,
      blocks,
      startedAtMs: BigInt(startedAtMs),
    });
  }
  return chunks;
}
