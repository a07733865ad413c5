// `random`: input and output lengths drawn uniformly from [floor(len * rangeRatio), len]
// (SGLang's bench_serving semantics; rangeRatio 1 means fixed lengths).
import type { Rng } from '../rng.ts';
import { makePromptPart } from './prompt.ts';
import type { Conversation, PromptSource } from './types.ts';

export function drawLength(rng: Rng, len: number, rangeRatio: number): number {
  const lo = Math.max(1, Math.floor(len * rangeRatio));
  return rng.int(Math.min(lo, len), len);
}

export function randomWorkload(
  rng: Rng,
  spec: { numPrompts: number; inputLen: number; outputLen: number; rangeRatio: number },
  source: PromptSource,
): Conversation[] {
  const conversations: Conversation[] = [];
  for (let id = 0; id < spec.numPrompts; id++) {
    const numInput = drawLength(rng, spec.inputLen, spec.rangeRatio);
    const numOutput = drawLength(rng, spec.outputLen, spec.rangeRatio);
    conversations.push({
      id,
      groupId: null,
      turns: [
        {
          user: makePromptPart(rng, numInput, source),
          system: null,
          numPlannedPromptTokens: numInput,
          maxOutputTokens: numOutput,
        },
      ],
    });
  }
  return conversations;
}
