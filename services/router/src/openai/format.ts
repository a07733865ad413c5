// OpenAI response bodies and stream chunks, field for field as api.openai.com sends them.
import type { ReleasedToken } from './choice-output.ts';

export type OpenAiFinishReason = 'stop' | 'length' | 'tool_calls';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export function makeUsage(
  numPromptTokens: number,
  numCompletionTokens: number,
  numCachedTokens: number,
): Usage {
  return {
    prompt_tokens: numPromptTokens,
    completion_tokens: numCompletionTokens,
    total_tokens: numPromptTokens + numCompletionTokens,
    prompt_tokens_details: { cached_tokens: numCachedTokens },
  };
}

/** Renders one token id as text for logprob entries. */
export type TokenRenderer = (tokenId: number) => string;

export interface ChatLogprobEntry {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

const encoder = new TextEncoder();

function bytesOf(text: string): number[] {
  return Array.from(encoder.encode(text));
}

// The chosen token is shown as its share of the output text, so the entries concatenate to the
// content exactly; alternatives have no context and are rendered alone.
export function chatLogprobEntries(
  tokens: readonly ReleasedToken[],
  render: TokenRenderer,
): ChatLogprobEntry[] {
  return tokens.map((token) => {
    const text = token.text;
    return {
      token: text,
      logprob: token.logprob ?? 0,
      bytes: bytesOf(text),
      top_logprobs: (token.topLogprobs ?? []).map((top) => {
        const topText = render(top.tokenId);
        return { token: topText, logprob: top.logprob, bytes: bytesOf(topText) };
      }),
    };
  });
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

export function completionLogprobs(
  tokens: readonly ReleasedToken[],
  render: TokenRenderer,
  baseOffset: number,
): CompletionLogprobs {
  return {
    tokens: tokens.map((t) => t.text),
    token_logprobs: tokens.map((t) => t.logprob ?? 0),
    top_logprobs: tokens.map((t) => {
      const top: Record<string, number> = {};
      for (const alt of t.topLogprobs ?? []) {
        const key = render(alt.tokenId);
        if (!(key in top)) top[key] = alt.logprob;
      }
      return top;
    }),
    text_offset: tokens.map((t) => baseOffset + t.textOffset),
  };
}

export function mergeCompletionLogprobs(into: CompletionLogprobs, more: CompletionLogprobs): void {
  into.tokens.push(...more.tokens);
  into.token_logprobs.push(...more.token_logprobs);
  into.top_logprobs.push(...more.top_logprobs);
  into.text_offset.push(...more.text_offset);
}

/** Serializes one server-sent event. */
export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

export const sseDone = 'data: [DONE]\n\n';
