// `sharegpt-like`: lengths from a log-normal approximation of the ShareGPT V3 conversations as
// bench_serving samples them (Llama tokenizer; prompt 4..1024 tokens, prompt + output <= 2048),
// whose commonly reported averages are ~215 prompt and ~200 output tokens per request, with a
// long right tail. No dataset is downloaded: only the length distribution is reproduced, the
// text is synthetic.
//   input  ~ LogNormal(ln 130, 1.0): median 130, mean ~ 214 before clipping, clipped to [4, 1024]
//   output ~ LogNormal(ln 135, 0.9): median 135, mean ~ 203 before clipping, clipped to [4, 2048 - input]
import type { Rng } from '../rng.ts';
import { makePromptPart } from './prompt.ts';
import type { Conversation, PromptSource } from './types.ts';

export const SHAREGPT_LIKE = {
  inputMedian: 130,
  inputSigma: 1.0,
  outputMedian: 135,
  outputSigma: 0.9,
  minLen: 4,
  maxInputLen: 1024,
  maxTotalLen: 2048,
} as const;

function logNormal(rng: Rng, median: number, sigma: number): number {
  return Math.exp(Math.log(median) + sigma * rng.normal());
}

export function sharegptLikeLengths(rng: Rng): { numInput: number; numOutput: number } {
  const d = SHAREGPT_LIKE;
  const numInput = Math.min(
    d.maxInputLen,
    Math.max(d.minLen, Math.round(logNormal(rng, d.inputMedian, d.inputSigma))),
  );
  const numOutput = Math.min(
    d.maxTotalLen - numInput,
    Math.max(d.minLen, Math.round(logNormal(rng, d.outputMedian, d.outputSigma))),
  );
  return { numInput, numOutput };
}

export function sharegptLikeWorkload(
  rng: Rng,
  spec: { numPrompts: number; outputLen: number | null },
  source: PromptSource,
): Conversation[] {
  const conversations: Conversation[] = [];
  for (let id = 0; id < spec.numPrompts; id++) {
    const { numInput, numOutput } = sharegptLikeLengths(rng);
    conversations.push({
      id,
      groupId: null,
      turns: [
        {
          user: makePromptPart(rng, numInput, source),
          system: null,
          numPlannedPromptTokens: numInput,
          maxOutputTokens: spec.outputLen ?? numOutput,
        },
      ],
    });
  }
  return conversations;
}
