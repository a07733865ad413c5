// The request lifecycle behind the HTTP routes: validate, pick the model's route, tokenize, check
// the output constraint, admit, check the context, route and run every prompt, and hand the
// client OpenAI-shaped results (whole or as SSE), tool calls parsed out of chat choices.
import { randomBytes } from 'node:crypto';
import { blockHashes } from '@tandem/tokenizer';
import type { ApiKeyPolicy } from './auth/api-keys.ts';
import type { KeyLimiter } from './auth/key-limiter.ts';
import { type AdmissionQueue, type PriorityClass, requestCost } from './cluster/admission.ts';
import { ContextLengthError, InvalidRequestError, ModelNotFoundError } from './errors.ts';
import { type ChoiceEvent, type PromptUsage, runPrompt } from './generation.ts';
import { toBlockKeys } from './kv/block-keys.ts';
import type { RouterMetrics } from './metrics.ts';
import { type ServedModel, usesTools } from './model.ts';
import type { ModelRoute, ModelRoutes } from './model-route.ts';
import {
  type ChatLogprobEntry,
  type CompletionLogprobs,
  chatLogprobEntries,
  completionLogprobs,
  makeUsage,
  mergeCompletionLogprobs,
  type OpenAiFinishReason,
  sseData,
  sseDone,
  type Usage,
} from './openai/format.ts';
import type { ChatRequest, CompletionRequest, GenerationOptions } from './openai/request.ts';
import { TextChunkFramer } from './openai/sse-chunk.ts';
import {
  defaultValidationLimits,
  type ValidationLimits,
  validateChatRequest,
  validateCompletionRequest,
} from './openai/validate.ts';
import { sessionKeyOf } from './policy/session-affinity.ts';
import { annotateRequest, annotateUsage } from './request-trace.ts';
import { TokenTimer } from './token-timer.ts';
import type { ToolCallFormat } from './tools/formats.ts';
import { collectToolDeltas, ToolCallParser, type ToolDelta } from './tools/tool-call-parser.ts';

/** Where a response goes: the HTTP layer implements it (headers are sent on the first write). */
export interface ResponseSink {
  /** Sends a whole JSON body (non-streaming). */
  json(body: unknown): void;
  /** Sends one SSE event (the first call sends the event-stream headers). */
  event(data: string): void;
  end(): void;
  /** True once anything was sent (errors then go into the stream). */
  readonly started: boolean;
  /**
   * Null while the client keeps up; else a promise that settles once its buffer drained (or it
   * left). The generation stops reading the worker's stream meanwhile, so the worker merges the
   * steps it makes in the meantime into one batch (nothing queues here without bound).
   */
  whenWritable(): Promise<void> | null;
}

export interface RequestContext {
  requestId: string;
  /** Session key from a header (x-routing-key, x-session-id); the body's `user` is the fallback. */
  routingKey: string | null;
  /** Admission class (x-priority header; default normal). */
  priority?: PriorityClass;
  signal: AbortSignal;
  /** The client's key (its limits apply), or null when the router takes no keys. */
  apiKey: ApiKeyPolicy | null;
}

export interface ServiceParams {
  /** The served models, each with its workers, index and dispatcher. */
  models: ModelRoutes;
  admission: AdmissionQueue;
  metrics: RouterMetrics;
  /** Per-key limits shared by the replicas. */
  keyLimiter: KeyLimiter;
}

/** A /v1/models entry. */
export interface ModelListing {
  id: string;
  created: number;
}

/** Makes worker-facing request ids unique within this router process. */
let workerCallSeq = 0;

interface PreparedPrompt {
  tokenIds: number[];
  /** Text put before the output when echo is on. */
  echoText: string;
  /** Generated tokens per choice (what the context leaves, or the request's max_tokens). */
  maxTokens: number;
}

export class RouterService {
  readonly #params: ServiceParams;

  constructor(params: ServiceParams) {
    this.#params = params;
  }

  /** Every name requests may use (served names and aliases). */
  get modelNames(): string[] {
    return this.#params.models.acceptedNames;
  }

  /** GET /v1/models: the served names, in --model order. */
  listModels(): ModelListing[] {
    return this.#params.models.all().map(({ model }) => ({ id: model.name, created: model.createdAtS }));
  }

  /** GET /v1/models/{id}: a served name or alias, or null. */
  describeModel(id: string): ModelListing | null {
    const route = this.#params.models.get(id);
    return route === null ? null : { id, created: route.model.createdAtS };
  }

  #route(name: string): ModelRoute {
    const route = this.#params.models.get(name);
    if (route === null) throw new ModelNotFoundError(`The model \`${name}\` does not exist`, 'model');
    return route;
  }

  /** The limits of the model the body names (token ids are bounded by its vocabulary). */
  #limits(body: unknown): ValidationLimits {
    const name = typeof body === 'object' && body !== null ? (body as { model?: unknown }).model : undefined;
    const route = typeof name === 'string' ? this.#params.models.get(name) : null;
    return {
      ...defaultValidationLimits,
      servedModelNames: this.modelNames,
      // An unknown model is refused (404) before any token id is read.
      vocabSize: route?.model.vocabSize ?? Number.MAX_SAFE_INTEGER,
    };
  }

  async chat(body: unknown, requestContext: RequestContext, sink: ResponseSink): Promise<void> {
    const context = { ...requestContext, routingKey: sessionKeyOf(requestContext.routingKey, body) };
    const validated = validateChatRequest(body, this.#limits(body));
    const route = this.#route(validated.model);
    let numChars = 0;
    for (const message of validated.messages) numChars += message.content.length;
    this.#checkUntokenizedLength(route.model, numChars, 'messages');
    const tokenIds = await route.model.encodeChat(validated);
    const maxTokens = this.#maxTokensFor(route.model, tokenIds.length, validated.options, 'messages');
    // Tool calls are parsed out of the text unless another constraint shapes it (JSON, a regex...).
    const tools = validated.tools;
    const forced = tools.choice.type === 'required' || tools.choice.type === 'function';
    const parseToolCalls = usesTools(validated) && (forced || validated.options.constraint === null);
    const toolFormat = parseToolCalls ? route.model.toolFormat : null;
    let constraint = validated.options.constraint;
    if (forced && toolFormat !== null) constraint = await route.constraints.forToolCalls(toolFormat, tools);
    else if (constraint !== null) await route.constraints.check(constraint);
    const request: ChatRequest = { ...validated, options: { ...validated.options, constraint } };
    await this.#execute(route, request, [{ tokenIds, echoText: '', maxTokens }], context, sink, toolFormat);
  }

  async completion(body: unknown, requestContext: RequestContext, sink: ResponseSink): Promise<void> {
    const context = { ...requestContext, routingKey: sessionKeyOf(requestContext.routingKey, body) };
    const request = validateCompletionRequest(body, this.#limits(body));
    const route = this.#route(request.model);
    const { model } = route;
    for (const prompt of request.prompts) {
      if (prompt.type === 'text') this.#checkUntokenizedLength(model, prompt.text.length, 'prompt');
    }
    const tokenIdLists = await Promise.all(
      request.prompts.map((prompt) =>
        prompt.type === 'text' ? model.encodeText(prompt.text) : Promise.resolve(prompt.tokenIds),
      ),
    );
    // Lengths first: an echo decodes the prompt, which is bounded only once it fits.
    const maxTokens = tokenIdLists.map((ids) =>
      this.#maxTokensFor(model, ids.length, request.options, 'prompt'),
    );
    const prompts = request.prompts.map((prompt, i): PreparedPrompt => {
      const tokenIds = tokenIdLists[i]!;
      const echoText = !request.echo
        ? ''
        : prompt.type === 'text'
          ? prompt.text
          : model.decode(prompt.tokenIds);
      return { tokenIds, echoText, maxTokens: maxTokens[i]! };
    });
    if (request.options.constraint !== null) await route.constraints.check(request.options.constraint);
    await this.#execute(route, request, prompts, context, sink, null);
  }

  /**
   * Refuses a text that cannot fit the context whatever it encodes to, before tokenizing it: a
   * 10 MB prompt costs the tokenizer seconds (issue 18, defect 4).
   */
  #checkUntokenizedLength(model: ServedModel, numChars: number, promptParam: string): void {
    const { maxPromptChars, maxModelLen } = model;
    if (numChars <= maxPromptChars) return;
    throw new ContextLengthError(
      `This model's maximum context length is ${maxModelLen} tokens. However, your ${promptParam} ` +
        `has ${numChars} characters, more than ${maxModelLen} tokens can hold. Please reduce the length of the ${promptParam}.`,
      promptParam,
    );
  }

  #maxTokensFor(
    model: ServedModel,
    numPromptTokens: number,
    options: GenerationOptions,
    promptParam: string,
  ): number {
    const { maxModelLen } = model;
    if (numPromptTokens === 0) {
      throw new InvalidRequestError(`the ${promptParam} encode to no tokens`, promptParam);
    }
    if (numPromptTokens >= maxModelLen) {
      throw new ContextLengthError(
        `This model's maximum context length is ${maxModelLen} tokens. However, your ${promptParam} ` +
          `resulted in ${numPromptTokens} tokens. Please reduce the length of the ${promptParam}.`,
        promptParam,
      );
    }
    if (options.maxTokens === null) {
      const maxTokens = maxModelLen - numPromptTokens;
      if (options.minTokens > maxTokens) {
        throw new InvalidRequestError(
          `'min_tokens' (${options.minTokens}) exceeds the ${maxTokens} tokens the context leaves`,
          'min_tokens',
        );
      }
      return maxTokens;
    }
    if (numPromptTokens + options.maxTokens > maxModelLen) {
      throw new ContextLengthError(
        `This model's maximum context length is ${maxModelLen} tokens. However, you requested ` +
          `${numPromptTokens + options.maxTokens} tokens (${numPromptTokens} in the ${promptParam}, ` +
          `${options.maxTokens} for the completion). Please reduce the length of the ${promptParam} or completion.`,
        options.maxTokensParam,
      );
    }
    return options.maxTokens;
  }

  async #execute(
    route: ModelRoute,
    request: ChatRequest | CompletionRequest,
    prompts: PreparedPrompt[],
    context: RequestContext,
    sink: ResponseSink,
    toolFormat: ToolCallFormat | null,
  ): Promise<void> {
    const { options } = request;
    const { metrics } = this.#params;
    const { model, dispatcher, registry } = route;
    annotateRequest(request, context.requestId);
    let cost = 0;
    let numKeyTokens = 0;
    for (const prompt of prompts) {
      cost += requestCost({
        numPromptTokens: prompt.tokenIds.length,
        n: options.n,
        maxTokens: prompt.maxTokens,
        numLogprobEntries: options.logprobs ? 1 + options.topLogprobs : 0,
      });
      numKeyTokens += prompt.tokenIds.length + options.n * prompt.maxTokens;
    }
    // The key's limits before the queue: a client over its budget takes no place in it.
    const grant =
      context.apiKey === null ? null : await this.#params.keyLimiter.acquire(context.apiKey, numKeyTokens);
    let numTokensUsed = numKeyTokens;
    let release: () => void;
    const queuedAtMs = performance.now();
    try {
      release = await this.#params.admission.admit(context.signal, cost, context.priority);
    } catch (error) {
      grant?.release(0);
      throw error;
    }
    const startedAtMs = performance.now();
    metrics.queue.observe((startedAtMs - queuedAtMs) / 1000);
    try {
      const formatter = new ResponseFormatter(request, model, context.requestId, prompts, sink, toolFormat);
      const pageSize = registry.pageSize;
      const usages = await Promise.all(
        prompts.map((prompt, promptIndex) =>
          runPrompt(dispatcher, {
            dispatch: {
              requestId: context.requestId,
              workerRequestId: `${context.requestId}-${promptIndex}-${(++workerCallSeq).toString(36)}`,
              promptTokenIds: prompt.tokenIds,
              blockKeys: toBlockKeys(pageSize === null ? [] : blockHashes('', prompt.tokenIds, pageSize)),
              routingKey: context.routingKey,
              admission: { priority: context.priority ?? 'normal', queuedMs: startedAtMs - queuedAtMs },
              options,
              maxTokens: prompt.maxTokens,
            },
            firstChoiceIndex: promptIndex * options.n,
            model,
            onEvent: (event) => formatter.onEvent(event),
            whenWritable: () => sink.whenWritable(),
            signal: context.signal,
            timing: metrics.registry.enabled ? new TokenTimer(metrics) : null,
          }),
        ),
      );
      const total = sumUsage(usages);
      numTokensUsed = total.numPromptTokens + total.numCompletionTokens;
      metrics.promptTokens.inc(total.numPromptTokens);
      metrics.cachedTokens.inc(total.numCachedTokens);
      metrics.completionTokens.inc(total.numCompletionTokens);
      for (const usage of usages) {
        metrics.inputTokens.observe(usage.numPromptTokens);
        metrics.outputTokens.observe(usage.numCompletionTokens);
      }
      annotateUsage(total);
      formatter.finish(makeUsage(total.numPromptTokens, total.numCompletionTokens, total.numCachedTokens));
    } finally {
      release();
      grant?.release(numTokensUsed);
      metrics.e2e.observe((performance.now() - startedAtMs) / 1000);
    }
  }
}

function sumUsage(usages: readonly PromptUsage[]): PromptUsage {
  const total: PromptUsage = { numPromptTokens: 0, numCachedTokens: 0, numCompletionTokens: 0 };
  for (const usage of usages) {
    total.numPromptTokens += usage.numPromptTokens;
    total.numCachedTokens += usage.numCachedTokens;
    total.numCompletionTokens += usage.numCompletionTokens;
  }
  return total;
}

interface ChoiceAccumulator {
  text: string;
  chatLogprobs: ChatLogprobEntry[];
  completionLogprobs: CompletionLogprobs;
  finishReason: OpenAiFinishReason | null;
  stopReason: string | number | null;
  /** Streaming: the role chunk (chat) or echo text (completion) went out. */
  opened: boolean;
  /** Chat with tools: the tool calls found in the text so far (null: plain content). */
  toolParser: ToolCallParser | null;
}

/** OpenAI-style tool call ids: call_ and 24 random characters. */
function newToolCallId(): string {
  return `call_${randomBytes(18).toString('base64url').slice(0, 24)}`;
}

/** A chunk's delta for one piece of a chat choice's output. */
function deltaOf(piece: ToolDelta): Record<string, unknown> {
  switch (piece.type) {
    case 'content':
      return { content: piece.text };
    case 'call':
      return {
        tool_calls: [
          {
            index: piece.index,
            id: piece.id,
            type: 'function',
            function: { name: piece.name, arguments: '' },
          },
        ],
      };
    case 'arguments':
      return { tool_calls: [{ index: piece.index, function: { arguments: piece.text } }] };
  }
}

/** Builds chat / text-completion bodies and chunks exactly as OpenAI shapes them. */
class ResponseFormatter {
  readonly #request: ChatRequest | CompletionRequest;
  readonly #model: ServedModel;
  readonly #sink: ResponseSink;
  readonly #id: string;
  readonly #createdS = Math.floor(Date.now() / 1000);
  readonly #choices: ChoiceAccumulator[];
  readonly #echoTexts: string[];
  readonly #numPromptTokens: number;
  /** Tokens released to the client so far (continuous usage stats). */
  #numCompletionTokens = 0;
  /** The plain text chunk, framed without building its object (null: every chunk is built). */
  readonly #framer: TextChunkFramer | null;

  /** toolFormat: parse tool calls out of chat choices in this format (null: none). */
  constructor(
    request: ChatRequest | CompletionRequest,
    model: ServedModel,
    requestId: string,
    prompts: readonly PreparedPrompt[],
    sink: ResponseSink,
    toolFormat: ToolCallFormat | null,
  ) {
    this.#request = request;
    this.#model = model;
    this.#sink = sink;
    this.#id = `${request.type === 'chat' ? 'chatcmpl' : 'cmpl'}-${requestId}`;
    const n = request.options.n;
    this.#echoTexts = prompts.flatMap((p) => Array.from({ length: n }, () => p.echoText));
    this.#numPromptTokens = prompts.reduce((sum, p) => sum + p.tokenIds.length, 0);
    this.#choices = this.#echoTexts.map((echoText) => ({
      text: echoText,
      chatLogprobs: [],
      completionLogprobs: { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] },
      finishReason: null,
      stopReason: null,
      opened: false,
      toolParser: toolFormat === null ? null : new ToolCallParser(toolFormat.syntax, newToolCallId),
    }));
    const { options } = request;
    this.#framer =
      !options.stream || options.continuousUsageStats
        ? null
        : new TextChunkFramer({
            id: this.#id,
            object: request.type === 'chat' ? 'chat.completion.chunk' : 'text_completion',
            created: this.#createdS,
            model: request.model,
            usageNull: options.includeUsage,
          });
  }

  get #streaming(): boolean {
    return this.#request.options.stream;
  }

  onEvent(event: ChoiceEvent): void {
    const choice = this.#choices[event.index]!;
    this.#numCompletionTokens += event.tokens.length;
    const { options } = this.#request;
    const render = this.#model.renderToken;
    choice.text += event.text;
    choice.finishReason = event.finishReason;
    choice.stopReason = event.stopReason;
    let chatEntries: ChatLogprobEntry[] | null = null;
    let textLogprobs: CompletionLogprobs | null = null;
    if (options.logprobs) {
      if (this.#request.type === 'chat') {
        chatEntries = chatLogprobEntries(event.tokens, render);
        choice.chatLogprobs.push(...chatEntries);
      } else {
        const echoLength = this.#echoTexts[event.index]!.length;
        textLogprobs = completionLogprobs(event.tokens, render, echoLength);
        mergeCompletionLogprobs(choice.completionLogprobs, textLogprobs);
      }
    }
    if (!this.#streaming) return;
    if (this.#request.type === 'chat') {
      if (!choice.opened) {
        choice.opened = true;
        this.#chunk([
          {
            index: event.index,
            delta: { role: 'assistant', content: '' },
            logprobs: null,
            finish_reason: null,
          },
        ]);
      }
      const parser = choice.toolParser;
      if (parser === null && chatEntries === null && this.#framer !== null) {
        if (event.text.length > 0) this.#sink.event(this.#framer.event(event.index, event.text));
        if (event.finishReason !== null) {
          this.#chunk([
            { index: event.index, delta: {}, logprobs: null, finish_reason: this.#finishReasonOf(choice) },
          ]);
        }
        return;
      }
      const pieces: ToolDelta[] =
        parser === null
          ? event.text.length > 0
            ? [{ type: 'content', text: event.text }]
            : []
          : [...parser.push(event.text), ...(event.finishReason !== null ? parser.finish() : [])];
      let logprobs =
        chatEntries === null || chatEntries.length === 0 ? null : { content: chatEntries, refusal: null };
      if (pieces.length === 0 && logprobs !== null) pieces.push({ type: 'content', text: '' });
      for (const piece of pieces) {
        this.#chunk([{ index: event.index, delta: deltaOf(piece), logprobs, finish_reason: null }]);
        logprobs = null;
      }
      if (event.finishReason !== null) {
        this.#chunk([
          { index: event.index, delta: {}, logprobs: null, finish_reason: this.#finishReasonOf(choice) },
        ]);
      }
      return;
    }
    let text = event.text;
    if (!choice.opened) {
      choice.opened = true;
      text = this.#echoTexts[event.index]! + text;
    }
    if (textLogprobs === null && event.finishReason === null && this.#framer !== null) {
      if (text.length > 0) this.#sink.event(this.#framer.event(event.index, text));
      return;
    }
    if (
      text.length > 0 ||
      event.finishReason !== null ||
      (textLogprobs !== null && textLogprobs.tokens.length > 0)
    ) {
      this.#chunk([{ index: event.index, text, logprobs: textLogprobs, finish_reason: event.finishReason }]);
    }
  }

  finish(usage: Usage): void {
    const { options } = this.#request;
    if (this.#streaming) {
      if (options.includeUsage) this.#chunk([], usage);
      this.#sink.event(sseDone);
      this.#sink.end();
      return;
    }
    const base = {
      id: this.#id,
      created: this.#createdS,
      model: this.#request.model,
      system_fingerprint: null,
    };
    if (this.#request.type === 'chat') {
      this.#sink.json({
        ...base,
        object: 'chat.completion',
        choices: this.#choices.map((choice, index) => ({
          index,
          message: this.#message(choice),
          logprobs: options.logprobs ? { content: choice.chatLogprobs, refusal: null } : null,
          finish_reason: this.#finishReasonOf(choice),
          stop_reason: choice.stopReason,
        })),
        usage,
      });
    } else {
      this.#sink.json({
        ...base,
        object: 'text_completion',
        choices: this.#choices.map((choice, index) => ({
          index,
          text: choice.text,
          logprobs: options.logprobs ? choice.completionLogprobs : null,
          finish_reason: choice.finishReason,
          stop_reason: choice.stopReason,
        })),
        usage,
      });
    }
    this.#sink.end();
  }

  /** A whole chat choice's message: its content, and its tool calls when it made any. */
  #message(choice: ChoiceAccumulator): Record<string, unknown> {
    const parser = choice.toolParser;
    if (parser === null) return { role: 'assistant', content: choice.text, refusal: null };
    const { content, calls } = collectToolDeltas([...parser.push(choice.text), ...parser.finish()]);
    const message: Record<string, unknown> = { role: 'assistant', content, refusal: null };
    if (calls.length > 0) {
      message.tool_calls = calls.map((call) => ({
        id: call.id,
        type: 'function',
        function: { name: call.name, arguments: call.arguments },
      }));
    }
    return message;
  }

  /** 'tool_calls' for a choice that ended by making calls (OpenAI's finish reason). */
  #finishReasonOf(choice: ChoiceAccumulator): OpenAiFinishReason | null {
    const made = choice.toolParser !== null && choice.toolParser.numCalls > 0;
    return made && choice.finishReason === 'stop' ? 'tool_calls' : choice.finishReason;
  }

  #chunk(choices: unknown[], usage: Usage | null = null): void {
    const { options } = this.#request;
    const chunk: Record<string, unknown> = {
      id: this.#id,
      object: this.#request.type === 'chat' ? 'chat.completion.chunk' : 'text_completion',
      created: this.#createdS,
      model: this.#request.model,
      system_fingerprint: null,
      choices,
    };
    if (usage !== null) chunk.usage = usage;
    else if (options.continuousUsageStats) {
      // vLLM's continuous usage: the running totals on every chunk.
      chunk.usage = makeUsage(this.#numPromptTokens, this.#numCompletionTokens, 0);
    } else if (options.includeUsage) chunk.usage = null;
    this.#sink.event(sseData(chunk));
  }
}
