// The router's normalized view of an OpenAI request, after validation (openai/validate.ts).
import type { ConstraintSpec } from '@tandem/structured';
import type { MessageToolCall, ToolsRequest } from '../tools/tool-request.ts';

export interface SamplingOptions {
  /** 0 means greedy. */
  temperature: number;
  topP: number;
  /** 0: off. */
  topK: number;
  /** 0: off. */
  minP: number;
  /** 1: off. */
  repetitionPenalty: number;
  frequencyPenalty: number;
  presencePenalty: number;
  /** Token id -> bias added to its logit. */
  logitBias: Map<number, number>;
  seed: number | null;
}

export interface GenerationOptions {
  sampling: SamplingOptions;
  /** Generated tokens per choice; null: whatever the context leaves. */
  maxTokens: number | null;
  /** The field it came from (errors about it name that one). */
  maxTokensParam: 'max_tokens' | 'max_completion_tokens';
  minTokens: number;
  stop: string[];
  stopTokenIds: number[];
  ignoreEos: boolean;
  n: number;
  /** Return the chosen tokens' logprobs. */
  logprobs: boolean;
  /** Alternatives per position (0..20). */
  topLogprobs: number;
  includeStopStrInOutput: boolean;
  skipSpecialTokens: boolean;
  stream: boolean;
  includeUsage: boolean;
  /** Put a usage object on every streamed chunk (vLLM's stream_options.continuous_usage_stats). */
  continuousUsageStats: boolean;
  /**
   * Constrained decoding (response_format, guided_*, structured_outputs; or tool calls that
   * tool_choice requires): every choice's output matches it. null: unconstrained.
   */
  constraint: ConstraintSpec | null;
  /**
   * Output the constraint has already seen (a choice continued on another worker after a
   * failover): the worker's matcher accepts these before sampling. Empty for a new request.
   */
  constraintPrefixTokenIds: number[];
}

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

export interface ChatMessage {
  role: ChatRole;
  content: string;
  name: string | null;
  /** An assistant message's tool calls (null: none). */
  toolCalls: MessageToolCall[] | null;
  /** A tool message: the call it answers (null otherwise). */
  toolCallId: string | null;
}

export interface ChatRequest {
  type: 'chat';
  model: string;
  messages: ChatMessage[];
  addGenerationPrompt: boolean;
  /** Continue the last (assistant) message instead of opening a new one. */
  continueFinalMessage: boolean;
  /** Extra variables for the chat template. */
  chatTemplateKwargs: Record<string, unknown>;
  /** tools, tool_choice, parallel_tool_calls (no tools: an empty list, choice none). */
  tools: ToolsRequest;
  options: GenerationOptions;
}

/** A completion prompt: text to tokenize, or token ids as given. */
export type CompletionPrompt = { type: 'text'; text: string } | { type: 'tokens'; tokenIds: number[] };

export interface CompletionRequest {
  type: 'completion';
  model: string;
  /** One or more prompts; choice index = promptIndex * n + choiceIndex. */
  prompts: CompletionPrompt[];
  echo: boolean;
  options: GenerationOptions;
}

export type ParsedRequest = ChatRequest | CompletionRequest;
