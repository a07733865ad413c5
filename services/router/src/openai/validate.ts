// Validates OpenAI /v1/chat/completions and /v1/completions bodies (plus the vLLM / SGLang
// extras) into ParsedRequest. Unknown fields are ignored, as vLLM does; known fields tandem
// cannot honour are rejected with the field named.
import { InvalidRequestError, ModelNotFoundError, UnsupportedError } from '../errors.ts';
import { type MessageToolCall, readMessageToolCalls, readToolsRequest } from '../tools/tool-request.ts';
import {
  checkNumber,
  checkTokenId,
  fail,
  isObject,
  type JsonObject,
  optional,
  readBoolean,
  readNullableNumber,
  readNumber,
  readString,
  readStringOrList,
  readTokenIdList,
  typeName,
} from './fields.ts';
import type {
  ChatMessage,
  ChatRequest,
  ChatRole,
  CompletionPrompt,
  CompletionRequest,
  GenerationOptions,
  SamplingOptions,
} from './request.ts';
import { readOutputConstraint } from './response-format.ts';

export interface ValidationLimits {
  /** Names this router answers to. */
  servedModelNames: readonly string[];
  /** Token ids (prompts, stop ids, logit_bias keys) must be below this. */
  vocabSize: number;
  /** Choices per request. */
  maxN: number;
  maxStopStrings: number;
  maxTopLogprobs: number;
  /** Prompts per completion request. */
  maxBatchPrompts: number;
}

export const defaultValidationLimits: Omit<ValidationLimits, 'servedModelNames' | 'vocabSize'> = {
  maxN: 16,
  maxStopStrings: 16,
  maxTopLogprobs: 20,
  maxBatchPrompts: 64,
};

/** The largest value an int32 / uint32 wire field of ours is given (top_k, min_tokens). */
const maxInt32 = 2 ** 31 - 1;

/** OpenAI's legacy completions default. */
const completionDefaultMaxTokens = 16;

function requireObject(body: unknown): JsonObject {
  if (!isObject(body)) throw new InvalidRequestError('the request body must be a JSON object', null);
  return body;
}

function readModel(body: JsonObject, limits: ValidationLimits): string {
  const model = optional(body, 'model');
  if (model === null) fail('model', "'model' is required");
  if (typeof model !== 'string') fail('model', `'model' must be a string, got ${typeName(model)}`);
  if (!limits.servedModelNames.includes(model)) {
    throw new ModelNotFoundError(`The model \`${model}\` does not exist`, 'model');
  }
  return model;
}

function readLogitBias(body: JsonObject, vocabSize: number): Map<number, number> {
  const value = optional(body, 'logit_bias');
  const bias = new Map<number, number>();
  if (value === null) return bias;
  if (!isObject(value)) fail('logit_bias', `'logit_bias' must be an object, got ${typeName(value)}`);
  for (const [key, weight] of Object.entries(value)) {
    const tokenId = Number(key);
    if (!/^\d{1,16}$/.test(key) || !Number.isSafeInteger(tokenId)) {
      fail('logit_bias', `'logit_bias' keys must be token ids, got '${key.slice(0, 32)}'`);
    }
    if (tokenId >= vocabSize) {
      fail('logit_bias', `'logit_bias' key ${tokenId} is outside the vocabulary (size ${vocabSize})`);
    }
    bias.set(tokenId, checkNumber(weight, 'logit_bias', { min: -100, max: 100 }));
  }
  return bias;
}

function readSampling(body: JsonObject, vocabSize: number): SamplingOptions {
  const topK = readNumber(body, 'top_k', 0, { integer: true, min: -1, max: maxInt32 });
  return {
    temperature: readNumber(body, 'temperature', 1, { min: 0, max: 2 }),
    topP: readNumber(body, 'top_p', 1, { above: 0, max: 1 }),
    topK: topK === -1 ? 0 : topK,
    minP: readNumber(body, 'min_p', 0, { min: 0, max: 1 }),
    repetitionPenalty: readNumber(body, 'repetition_penalty', 1, { above: 0, max: 2 }),
    frequencyPenalty: readNumber(body, 'frequency_penalty', 0, { min: -2, max: 2 }),
    presencePenalty: readNumber(body, 'presence_penalty', 0, { min: -2, max: 2 }),
    logitBias: readLogitBias(body, vocabSize),
    seed: readNullableNumber(body, 'seed', { integer: true, min: Number.MIN_SAFE_INTEGER }),
  };
}

interface LogprobChoice {
  logprobs: boolean;
  topLogprobs: number;
}

function readChatLogprobs(body: JsonObject, limits: ValidationLimits): LogprobChoice {
  const logprobs = readBoolean(body, 'logprobs', false);
  const topLogprobs = readNumber(body, 'top_logprobs', 0, {
    integer: true,
    min: 0,
    max: limits.maxTopLogprobs,
  });
  if (optional(body, 'top_logprobs') !== null && !logprobs) {
    fail('top_logprobs', "'top_logprobs' requires 'logprobs' to be true");
  }
  return { logprobs, topLogprobs };
}

function readCompletionLogprobs(body: JsonObject, limits: ValidationLimits): LogprobChoice {
  const value = readNullableNumber(body, 'logprobs', { integer: true, min: 0, max: limits.maxTopLogprobs });
  return value === null ? { logprobs: false, topLogprobs: 0 } : { logprobs: true, topLogprobs: value };
}

function readOptions(
  body: JsonObject,
  limits: ValidationLimits,
  logprobChoice: LogprobChoice,
  defaultMaxTokens: number | null,
): GenerationOptions {
  const sampling = readSampling(body, limits.vocabSize);
  const n = readNumber(body, 'n', 1, { integer: true, min: 1, max: limits.maxN });
  const maxCompletionTokens = readNullableNumber(body, 'max_completion_tokens', { integer: true, min: 1 });
  const maxTokensField = readNullableNumber(body, 'max_tokens', { integer: true, min: 1 });
  const maxTokens = maxCompletionTokens ?? maxTokensField ?? defaultMaxTokens;
  const minTokens = readNumber(body, 'min_tokens', 0, { integer: true, min: 0, max: maxInt32 });
  if (maxTokens !== null && minTokens > maxTokens) {
    fail('min_tokens', `'min_tokens' (${minTokens}) must be <= max_tokens (${maxTokens})`);
  }
  const stream = readBoolean(body, 'stream', false);
  const streamOptions = optional(body, 'stream_options');
  let includeUsage = false;
  let continuousUsageStats = false;
  if (streamOptions !== null) {
    if (!stream) fail('stream_options', "'stream_options' is only allowed when 'stream' is true");
    if (!isObject(streamOptions)) fail('stream_options', "'stream_options' must be an object");
    includeUsage = readBoolean(streamOptions, 'include_usage', false, 'stream_options.include_usage');
    continuousUsageStats = readBoolean(
      streamOptions,
      'continuous_usage_stats',
      false,
      'stream_options.continuous_usage_stats',
    );
  }
  const bestOf = readNullableNumber(body, 'best_of', { integer: true, min: 1 });
  if (bestOf !== null && bestOf !== n) fail('best_of', "'best_of' other than n is not supported");
  return {
    sampling,
    maxTokens,
    maxTokensParam: maxCompletionTokens !== null ? 'max_completion_tokens' : 'max_tokens',
    minTokens,
    stop: readStringOrList(body, 'stop', limits.maxStopStrings),
    stopTokenIds: readTokenIdList(body, 'stop_token_ids', limits.vocabSize),
    ignoreEos: readBoolean(body, 'ignore_eos', false),
    n,
    logprobs: logprobChoice.logprobs,
    topLogprobs: logprobChoice.topLogprobs,
    includeStopStrInOutput: readBoolean(body, 'include_stop_str_in_output', false),
    skipSpecialTokens: readBoolean(body, 'skip_special_tokens', true),
    stream,
    includeUsage,
    continuousUsageStats,
    constraint: readOutputConstraint(body),
    constraintPrefixTokenIds: [],
  };
}

const chatRoles: readonly ChatRole[] = ['system', 'developer', 'user', 'assistant', 'tool'];

function readContent(value: unknown, param: string): string {
  if (value === null) return '';
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) fail(param, `'${param}' must be a string or a list of content parts`);
  let text = '';
  value.forEach((part, i) => {
    const partParam = `${param}.${i}`;
    if (!isObject(part)) fail(partParam, `'${partParam}' must be an object`);
    if (part.type !== 'text') {
      throw new UnsupportedError(`content parts of type '${String(part.type)}' are not supported`, partParam);
    }
    if (typeof part.text !== 'string') fail(`${partParam}.text`, `'${partParam}.text' must be a string`);
    text += part.text;
  });
  return text;
}

function readMessages(body: JsonObject): ChatMessage[] {
  const value = optional(body, 'messages');
  if (value === null) fail('messages', "'messages' is required");
  if (!Array.isArray(value)) fail('messages', `'messages' must be a list, got ${typeName(value)}`);
  if (value.length === 0) fail('messages', "'messages' must not be empty");
  return value.map((message, i): ChatMessage => {
    const param = `messages.${i}`;
    if (!isObject(message)) fail(param, `'${param}' must be an object`);
    const role = message.role;
    if (typeof role !== 'string' || !chatRoles.includes(role as ChatRole)) {
      fail(`${param}.role`, `'${param}.role' must be one of ${chatRoles.join(', ')}`);
    }
    let toolCalls: MessageToolCall[] | null = null;
    if (message.tool_calls !== undefined && message.tool_calls !== null) {
      if (role !== 'assistant')
        fail(`${param}.tool_calls`, `'${param}.tool_calls' is only allowed on assistant messages`);
      toolCalls = readMessageToolCalls(message.tool_calls, `${param}.tool_calls`);
    }
    let toolCallId: string | null = null;
    if (role === 'tool') {
      if (typeof message.tool_call_id !== 'string')
        fail(`${param}.tool_call_id`, `'${param}.tool_call_id' is required on tool messages`);
      toolCallId = message.tool_call_id;
    }
    const name = message.name === undefined || message.name === null ? null : message.name;
    if (name !== null && typeof name !== 'string') fail(`${param}.name`, `'${param}.name' must be a string`);
    return {
      role: role as ChatRole,
      content: readContent(message.content ?? null, `${param}.content`),
      name,
      toolCalls,
      toolCallId,
    };
  });
}

export function validateChatRequest(rawBody: unknown, limits: ValidationLimits): ChatRequest {
  const body = requireObject(rawBody);
  const model = readModel(body, limits);
  const messages = readMessages(body);
  const tools = readToolsRequest(body);
  const options = readOptions(body, limits, readChatLogprobs(body, limits), null);
  const forced = tools.choice.type === 'required' || tools.choice.type === 'function';
  if (forced && options.constraint !== null) {
    fail(
      'tool_choice',
      "'tool_choice' that requires a tool call cannot be combined with an output constraint",
    );
  }
  const continueFinalMessage = readBoolean(body, 'continue_final_message', false);
  const addGenerationPrompt = readBoolean(body, 'add_generation_prompt', !continueFinalMessage);
  if (continueFinalMessage && addGenerationPrompt) {
    fail(
      'continue_final_message',
      "'continue_final_message' cannot be combined with 'add_generation_prompt'",
    );
  }
  if (continueFinalMessage && messages.at(-1)?.role !== 'assistant') {
    fail('continue_final_message', "'continue_final_message' needs a final assistant message");
  }
  const kwargs = optional(body, 'chat_template_kwargs');
  if (kwargs !== null && !isObject(kwargs))
    fail('chat_template_kwargs', "'chat_template_kwargs' must be an object");
  return {
    type: 'chat',
    model,
    messages,
    addGenerationPrompt,
    continueFinalMessage,
    chatTemplateKwargs: kwargs ?? {},
    tools,
    options,
  };
}

function readTokenPrompt(value: unknown[], param: string, vocabSize: number): CompletionPrompt {
  if (value.length === 0) fail(param, `'${param}' must not be empty`);
  const tokenIds = value.map((id, i) => checkTokenId(id, `${param}.${i}`, vocabSize));
  return { type: 'tokens', tokenIds };
}

function readPrompts(body: JsonObject, limits: ValidationLimits): CompletionPrompt[] {
  const value = optional(body, 'prompt');
  if (value === null) fail('prompt', "'prompt' is required");
  if (typeof value === 'string') return [{ type: 'text', text: value }];
  if (!Array.isArray(value)) fail('prompt', `'prompt' must be a string, a list of strings or token ids`);
  if (value.length === 0) fail('prompt', "'prompt' must not be empty");
  if (typeof value[0] === 'number') return [readTokenPrompt(value, 'prompt', limits.vocabSize)];
  if (value.length > limits.maxBatchPrompts) {
    fail('prompt', `'prompt' takes at most ${limits.maxBatchPrompts} prompts, got ${value.length}`);
  }
  return value.map((item, i): CompletionPrompt => {
    if (typeof item === 'string') return { type: 'text', text: item };
    if (Array.isArray(item)) return readTokenPrompt(item, `prompt.${i}`, limits.vocabSize);
    return fail(`prompt.${i}`, `'prompt[${i}]' must be a string or a list of token ids`);
  });
}

export function validateCompletionRequest(rawBody: unknown, limits: ValidationLimits): CompletionRequest {
  const body = requireObject(rawBody);
  const model = readModel(body, limits);
  const prompts = readPrompts(body, limits);
  const logprobChoice = readCompletionLogprobs(body, limits);
  const options = readOptions(body, limits, logprobChoice, completionDefaultMaxTokens);
  const echo = readBoolean(body, 'echo', false);
  if (echo && options.logprobs) {
    throw new UnsupportedError("'echo' with 'logprobs' (prompt logprobs) is not supported", 'echo');
  }
  const suffix = readString(body, 'suffix');
  if (suffix !== null && suffix !== '') throw new UnsupportedError("'suffix' is not supported", 'suffix');
  return { type: 'completion', model, prompts, echo, options };
}
