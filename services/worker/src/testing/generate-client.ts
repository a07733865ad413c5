// Greedy generation over real gRPC, collecting each choice's tokens and finish reason.
import type { GrpcClient } from '@tandem/common';
import { FinishReason, type GenerateRequestSchema, type MessageInitShape, type Worker } from '@tandem/proto';

export interface ChoiceResult {
  tokenIds: number[];
  finishReason: FinishReason;
  numPromptTokens: number;
  numCachedTokens: number;
  numMessages: number;
}

export async function generate(
  client: GrpcClient<typeof Worker>,
  request: MessageInitShape<typeof GenerateRequestSchema>,
  options: { signal?: AbortSignal } = {},
): Promise<ChoiceResult[]> {
  const choices: ChoiceResult[] = [];
  for await (const response of client.generate(request, options)) {
    for (const delta of response.choices) {
      const choice = choices[delta.index] ?? {
        tokenIds: [],
        finishReason: FinishReason.UNSPECIFIED,
        numPromptTokens: 0,
        numCachedTokens: 0,
        numMessages: 0,
      };
      choices[delta.index] = choice;
      choice.tokenIds.push(...delta.tokenIds);
      choice.numMessages++;
      choice.numPromptTokens = response.numPromptTokens;
      choice.numCachedTokens = response.numCachedTokens;
      if (delta.finishReason !== FinishReason.UNSPECIFIED) choice.finishReason = delta.finishReason;
    }
  }
  return choices;
}

/** Temperature 0, 24 tokens, EOS ignored: the golden files' setting. */
export function greedyRequest(requestId: string, promptTokenIds: number[], maxTokens = 24) {
  return {
    requestId,
    promptTokenIds,
    maxTokens,
    ignoreEos: true,
    sampling: { temperature: 0 },
  } satisfies MessageInitShape<typeof GenerateRequestSchema>;
}
