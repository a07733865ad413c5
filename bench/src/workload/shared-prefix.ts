// `shared-prefix`: numGroups system prompts, each shared by promptsPerGroup questions, as
// SGLang's generated-shared-prefix dataset. A router that routes by prefix reuses the cached
// system prompt; one that ignores it prefills it again on every worker it sends the group to.
import type { Rng } from '../rng.ts';
import { makePromptPart } from './prompt.ts';
import type { Conversation, PromptSource } from './types.ts';

export function sharedPrefixWorkload(
  rng: Rng,
  spec: {
    numGroups: number;
    promptsPerGroup: number;
    systemPromptLen: number;
    questionLen: number;
    outputLen: number;
    order: 'shuffled' | 'grouped';
  },
  source: PromptSource,
): Conversation[] {
  const conversations: Conversation[] = [];
  for (let groupId = 0; groupId < spec.numGroups; groupId++) {
    const system = makePromptPart(rng, spec.systemPromptLen, source);
    for (let j = 0; j < spec.promptsPerGroup; j++) {
      conversations.push({
        id: 0,
        groupId,
        turns: [
          {
            system,
            user: makePromptPart(rng, spec.questionLen, source),
            numPlannedPromptTokens: spec.systemPromptLen + spec.questionLen,
            maxOutputTokens: spec.outputLen,
          },
        ],
      });
    }
  }
  if (spec.order === 'shuffled') rng.shuffle(conversations);
  conversations.forEach((c, i) => {
    c.id = i;
  });
  return conversations;
}
