// What the scheduler accepts: option ranges at construction, and requests that can ever run
// (checked before anything is queued, so a rejected request holds nothing).

import type { GenerateRequest, SchedulerOptions } from './engine.ts';
import { InvalidGenerateRequestError, InvalidSchedulerOptionsError, RequestTooLongError } from './errors.ts';

/** The model and pool limits a request is checked against. */
export interface RequestLimits {
  pageSize: number;
  numPages: number;
  vocabSize: number | null;
  maxModelLen: number | null;
}

/** Throws InvalidSchedulerOptionsError for a budget, limit or reserve out of range. */
export function validateSchedulerOptions(options: SchedulerOptions): void {
  for (const key of ['maxBatchTokens', 'maxRunningSequences', 'maxPrefillChunkTokens'] as const) {
    if (!Number.isInteger(options[key]) || options[key] < 1) {
      throw new InvalidSchedulerOptionsError(
        `scheduler option ${key} must be a positive integer, got ${options[key]}`,
      );
    }
  }
  if (!Number.isInteger(options.decodeReserveTokens) || options.decodeReserveTokens < 0) {
    throw new InvalidSchedulerOptionsError(
      `decodeReserveTokens must be a non-negative integer, got ${options.decodeReserveTokens}`,
    );
  }
}

/** Throws InvalidGenerateRequestError or RequestTooLongError for a request that can never run. */
export function validateRequest(request: GenerateRequest, limits: RequestLimits): void {
  const { promptTokenIds, n, maxTokens, minTokens } = request;
  if (promptTokenIds.length === 0)
    throw new InvalidGenerateRequestError('the prompt is empty', 'prompt_token_ids');
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidGenerateRequestError(`n must be a positive integer, got ${n}`, 'n');
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new InvalidGenerateRequestError(
      `maxTokens must be a positive integer, got ${maxTokens}`,
      'max_tokens',
    );
  }
  if (!Number.isInteger(minTokens) || minTokens < 0) {
    throw new InvalidGenerateRequestError(
      `minTokens must be a non-negative integer, got ${minTokens}`,
      'min_tokens',
    );
  }
  const vocabSize = limits.vocabSize;
  for (const token of promptTokenIds) {
    if (!Number.isInteger(token) || token < 0 || (vocabSize !== null && token >= vocabSize)) {
      throw new InvalidGenerateRequestError(
        `prompt token id ${token} is outside the vocabulary`,
        'prompt_token_ids',
      );
    }
  }
  const constraint = request.constraint;
  if (constraint !== null && vocabSize !== null && constraint.maskWords * 32 < vocabSize) {
    throw new InvalidGenerateRequestError(
      `the constraint's masks (${constraint.maskWords} words) do not cover the ${vocabSize}-token vocabulary`,
      'constraint',
    );
  }
  const maxModelLen = limits.maxModelLen;
  if (maxModelLen !== null && promptTokenIds.length >= maxModelLen) {
    throw new RequestTooLongError(
      `a ${promptTokenIds.length}-token prompt leaves no room (max ${maxModelLen})`,
    );
  }
  if (Math.ceil((promptTokenIds.length + 1) / limits.pageSize) > limits.numPages) {
    throw new RequestTooLongError(
      `a ${promptTokenIds.length}-token prompt needs more than the ${limits.numPages}-page KV pool`,
    );
  }
}
