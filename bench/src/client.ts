// Sends one streaming request to an OpenAI-compatible endpoint and times every output chunk.
import http from 'node:http';
import https from 'node:https';
import { nowMs } from './clock.ts';
import { BenchHttpError, BenchStreamError } from './errors.ts';
import type { RequestRecord } from './request-record.ts';
import { SseParser } from './sse.ts';

export type ApiKind = 'completions' | 'chat';

export type ChatMessage = { role: 'system' | 'user' | 'assistant'; content: string };

export type OutgoingRequest = {
  api: ApiKind;
  /** Completions: a string or token ids. Chat: unused. */
  prompt: string | number[] | null;
  /** Chat: the messages. Completions: unused. */
  messages: ChatMessage[] | null;
  maxOutputTokens: number;
  numPlannedPromptTokens: number;
  conversationId: number;
  turn: number;
  groupId: number | null;
};

export type ClientOptions = {
  url: URL;
  model: string;
  apiKey: string | null;
  ignoreEos: boolean;
  temperature: number;
  timeoutMs: number;
  /** Extra body fields merged into every request. */
  extraBody: Record<string, unknown>;
  agent: http.Agent;
};

export type ClientResult = { record: RequestRecord; outputText: string };

export function createAgent(url: URL): http.Agent {
  const options = { keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, noDelay: true };
  return url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
}

function requestBody(req: OutgoingRequest, options: ClientOptions): string {
  const body: Record<string, unknown> = {
    model: options.model,
    max_tokens: req.maxOutputTokens,
    temperature: options.temperature,
    stream: true,
    stream_options: { include_usage: true },
  };
  if (options.ignoreEos) body.ignore_eos = true;
  if (req.api === 'chat') body.messages = req.messages;
  else body.prompt = req.prompt;
  return JSON.stringify({ ...body, ...options.extraBody });
}

type Usage = {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
};

type Chunk = {
  id?: string;
  error?: unknown;
  choices?: Array<{
    text?: string | null;
    delta?: { content?: string | null; reasoning_content?: string | null };
  }>;
  usage?: Usage | null;
};

export function sendRequest(req: OutgoingRequest, options: ClientOptions): Promise<ClientResult> {
  const body = requestBody(req, options);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    accept: 'text/event-stream',
  };
  if (options.apiKey !== null) headers.authorization = `Bearer ${options.apiKey}`;
  const transport = options.url.protocol === 'https:' ? https : http;

  return new Promise((resolve) => {
    const startedAtMs = nowMs();
    const chunkOffsetsMs: number[] = [];
    let outputText = '';
    let responseId: string | null = null;
    let usage: Usage | null = null;
    let settled = false;
    let sentAtMs: number | null = null;
    const parser = new SseParser();
    const decoder = new TextDecoder();

    const finish = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const endedAtMs = nowMs();
      const firstOffset = chunkOffsetsMs[0];
      const ttftMs = firstOffset === undefined ? null : firstOffset;
      const itlMs: number[] = [];
      for (let i = 1; i < chunkOffsetsMs.length; i++) {
        itlMs.push((chunkOffsetsMs[i] as number) - (chunkOffsetsMs[i - 1] as number));
      }
      const e2eMs = endedAtMs - startedAtMs;
      const numOutputTokens = usage?.completion_tokens ?? chunkOffsetsMs.length;
      const tpotMs = ttftMs !== null && numOutputTokens > 1 ? (e2eMs - ttftMs) / (numOutputTokens - 1) : null;
      const ok = error === null && ttftMs !== null;
      resolve({
        outputText,
        record: {
          model: options.model,
          conversationId: req.conversationId,
          turn: req.turn,
          groupId: req.groupId,
          responseId,
          ok,
          error: error === null ? (ok ? null : 'no output tokens') : `${error.name}: ${error.message}`,
          startedAtMs,
          sendDelayMs: sentAtMs === null ? null : sentAtMs - startedAtMs,
          endedAtMs,
          ttftMs,
          e2eMs,
          chunkOffsetsMs,
          itlMs,
          tpotMs,
          numPlannedPromptTokens: req.numPlannedPromptTokens,
          maxOutputTokens: req.maxOutputTokens,
          numPromptTokens: usage?.prompt_tokens ?? null,
          numOutputTokens,
          numCachedTokens: usage?.prompt_tokens_details?.cached_tokens ?? null,
          usageReported: usage !== null,
        },
      });
    };

    const onEvent = (data: string, atMs: number): void => {
      if (data === '[DONE]') return;
      let chunk: Chunk;
      try {
        chunk = JSON.parse(data) as Chunk;
      } catch (cause) {
        throw new BenchStreamError(`unparseable stream chunk: ${data.slice(0, 200)}`, { cause });
      }
      if (chunk.error !== undefined)
        throw new BenchStreamError(`error event: ${JSON.stringify(chunk.error)}`);
      if (responseId === null && typeof chunk.id === 'string') responseId = chunk.id;
      const choice = chunk.choices?.[0];
      const text =
        choice === undefined
          ? ''
          : (choice.text ?? choice.delta?.content ?? choice.delta?.reasoning_content ?? '');
      if (text !== '') {
        chunkOffsetsMs.push(atMs - startedAtMs);
        outputText += text;
      }
      if (chunk.usage !== undefined && chunk.usage !== null) usage = chunk.usage;
    };

    const request = transport.request(
      options.url,
      { method: 'POST', headers, agent: options.agent },
      (response) => {
        const status = response.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          let errorBody = '';
          response.setEncoding('utf8');
          response.on('data', (s: string) => {
            errorBody += s;
          });
          response.on('end', () => finish(new BenchHttpError(status, errorBody)));
          response.on('error', (e) => finish(e));
          return;
        }
        response.on('data', (bytes: Buffer) => {
          const atMs = nowMs();
          if (settled) return;
          try {
            for (const event of parser.push(decoder.decode(bytes, { stream: true })))
              onEvent(event.data, atMs);
          } catch (e) {
            finish(e as Error);
            request.destroy();
          }
        });
        response.on('end', () => {
          parser.end();
          finish(null);
        });
        response.on('error', (e) => finish(e));
      },
    );
    const timer = setTimeout(() => {
      finish(new BenchStreamError(`request timed out after ${options.timeoutMs} ms`));
      request.destroy();
    }, options.timeoutMs);
    request.on('error', (e) => finish(e));
    request.on('finish', () => {
      sentAtMs = nowMs();
    });
    request.end(body);
  });
}
