// Builds a workload from its spec and a seed. The same (spec, seed, prompt source) always
// gives the same conversations.
import { createRng } from '../rng.ts';
import { multiTurnWorkload } from './multi-turn.ts';
import { randomWorkload } from './random.ts';
import { sharedPrefixWorkload } from './shared-prefix.ts';
import { sharegptLikeWorkload } from './sharegpt-like.ts';
import type { Conversation, PromptSource, WorkloadSpec } from './types.ts';

export function buildWorkload(spec: WorkloadSpec, seed: number, source: PromptSource): Conversation[] {
  const rng = createRng(seed);
  switch (spec.type) {
    case 'random':
      return randomWorkload(rng, spec, source);
    case 'sharegpt-like':
      return sharegptLikeWorkload(rng, spec, source);
    case 'shared-prefix':
      return sharedPrefixWorkload(rng, spec, source);
    case 'multi-turn':
      return multiTurnWorkload(rng, spec, source);
  }
}

export type { Conversation, PromptFormat, PromptPart, PromptSource, Turn, WorkloadSpec } from './types.ts';
