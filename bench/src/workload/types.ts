// What a workload generator produces: conversations of one or more turns. Single-turn
// workloads are conversations of one turn; multi-turn ones carry the history forward, so
// a turn's prompt is only known once the previous reply has arrived.

/** A prompt fragment: token ids (completions API only) or plain words. */
export type PromptPart = { type: 'token-ids'; ids: number[] } | { type: 'text'; text: string };

export type Turn = {
  /** What the user adds in this turn (for single-turn workloads: the whole prompt). */
  user: PromptPart;
  /** A shared system prompt, sent before `user` (shared-prefix workload); null when none. */
  system: PromptPart | null;
  /** Prompt length the generator aimed for (system + user, this turn only), in tokens or words. */
  numPlannedPromptTokens: number;
  maxOutputTokens: number;
};

export type Conversation = {
  id: number;
  /** Group of a shared-prefix workload; null for the others. */
  groupId: number | null;
  turns: Turn[];
};

export type PromptFormat = 'token-ids' | 'words';

export type WorkloadSpec =
  | { type: 'random'; numPrompts: number; inputLen: number; outputLen: number; rangeRatio: number }
  | { type: 'sharegpt-like'; numPrompts: number; outputLen: number | null }
  | {
      type: 'shared-prefix';
      numGroups: number;
      promptsPerGroup: number;
      systemPromptLen: number;
      questionLen: number;
      outputLen: number;
      /** Interleave groups in a seeded order (as SGLang does) or send group by group. */
      order: 'shuffled' | 'grouped';
    }
  | {
      type: 'multi-turn';
      numConversations: number;
      turnsPerConversation: number;
      inputLen: number;
      outputLen: number;
      rangeRatio: number;
    };

export type PromptSource = {
  format: PromptFormat;
  /** Token ids are drawn from [minTokenId, maxTokenId]; unused for words. */
  minTokenId: number;
  maxTokenId: number;
};
