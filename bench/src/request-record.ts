// What the client measured for one request. Times are wall-clock ms (see clock.ts); offsets
// are ms since the request started.

export type RequestRecord = {
  /** The model the request named (a mix sends each conversation to one of several). */
  model: string;
  conversationId: number;
  turn: number;
  groupId: number | null;
  /** The `id` field of the server's chunks; null when it sent none. */
  responseId: string | null;
  ok: boolean;
  error: string | null;
  startedAtMs: number;
  /** Until the whole request had been handed to the socket (connection set-up, client queueing). */
  sendDelayMs: number | null;
  endedAtMs: number;
  /** Start to first chunk carrying output text; null if none arrived. */
  ttftMs: number | null;
  e2eMs: number;
  /** Arrival offset of every chunk carrying output text. */
  chunkOffsetsMs: number[];
  /** Gaps between consecutive output chunks. */
  itlMs: number[];
  /** (e2e - ttft) / (numOutputTokens - 1); null below two output tokens. */
  tpotMs: number | null;
  numPlannedPromptTokens: number;
  maxOutputTokens: number;
  /** usage.prompt_tokens; null when the server sent no usage. */
  numPromptTokens: number | null;
  /** usage.completion_tokens, or the number of output chunks without usage. */
  numOutputTokens: number;
  /** usage.prompt_tokens_details.cached_tokens; null when not reported. */
  numCachedTokens: number | null;
  usageReported: boolean;
};
