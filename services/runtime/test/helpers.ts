// Request builders and stream collectors shared by the runtime tests.
import { defaultSampling } from '@tandem/executor';
import type { GenerateRequest, TokenChunk } from '../src/engine.ts';
import type { SamplingParams } from '../src/executor-port.ts';

export const greedy: SamplingParams = defaultSampling();

export function request(
  requestId: string,
  promptTokenIds: readonly number[],
  maxTokens: number,
  extra: Partial<GenerateRequest> = {},
): GenerateRequest {
  return {
    requestId,
    promptTokenIds,
    sampling: greedy,
    maxTokens,
    minTokens: 0,
    stopTokenIds: [],
    ignoreEos: true,
    n: 1,
    logprobs: false,
    cacheNamespace: null,
    constraint: null,
    ...extra,
  };
}

export interface Choice {
  tokenIds: number[];
  finishReason: string | null;
  matchedStopTokenId: number | null;
  numCachedTokens: number;
  numChunks: number;
}

/** Reads a stream to its end; per choice: tokens, finish reason, cached tokens. */
export async function collect(stream: AsyncIterable<TokenChunk>): Promise<Choice[]> {
  const choices: Choice[] = [];
  for await (const chunk of stream) {
    let choice = choices[chunk.choiceIndex];
    if (choice === undefined) {
      choice = {
        tokenIds: [],
        finishReason: null,
        matchedStopTokenId: null,
        numCachedTokens: 0,
        numChunks: 0,
      };
      choices[chunk.choiceIndex] = choice;
    }
    if (choice.finishReason !== null)
      throw new Error(`chunk after the last one of choice ${chunk.choiceIndex}`);
    choice.tokenIds.push(...chunk.tokenIds);
    choice.finishReason = chunk.finishReason;
    choice.matchedStopTokenId = chunk.matchedStopTokenId;
    choice.numCachedTokens = chunk.numCachedTokens;
    choice.numChunks++;
  }
  return choices;
}

export { seededRandom } from '@tandem/common';

export function randomTokens(random: () => number, length: number, vocabSize: number): number[] {
  return Array.from({ length }, () => 3 + Math.floor(random() * (vocabSize - 3)));
}
