// `multi-turn`: conversations whose every turn resends the whole history (earlier user turns
// and the model's actual replies) plus a new user message, so a server with a prefix cache
// should report a growing share of cached prompt tokens. Prompts are words: replies come back
// as text, which token-id prompts cannot carry.
import type { Rng } from '../rng.ts';
import { makePromptPart } from './prompt.ts';
import { drawLength } from './random.ts';
import type { Conversation, PromptSource } from './types.ts';

export function multiTurnWorkload(
  rng: Rng,
  spec: {
    numConversations: number;
    turnsPerConversation: number;
    inputLen: number;
    outputLen: number;
    rangeRatio: number;
  },
  source: PromptSource,
): Conversation[] {
  const wordSource: PromptSource = { ...source, format: 'words' };
  const conversations: Conversation[] = [];
  for (let id = 0; id < spec.numConversations; id++) {
    const turns = [];
    for (let t = 0; t < spec.turnsPerConversation; t++) {
      const numInput = drawLength(rng, spec.inputLen, spec.rangeRatio);
      turns.push({
        user: makePromptPart(rng, numInput, wordSource),
        system: null,
        numPlannedPromptTokens: numInput,
        maxOutputTokens: drawLength(rng, spec.outputLen, spec.rangeRatio),
      });
    }
    conversations.push({ id, groupId: null, turns });
  }
  return conversations;
}
