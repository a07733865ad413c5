// An OpenAI-compatible streaming endpoint with known, seeded delays. It "tokenizes" text as
// whitespace-separated words (token-id prompts count one per id), answers with words, one
// token per SSE chunk, and logs the times it really applied to every request (JSONL).
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError } from '@tandem/common';
import { nowMs } from '../clock.ts';
import { TestServerError } from '../errors.ts';
import { wordList } from '../workload/prompt.ts';
import { type DelayModel, planDelays } from './delays.ts';
import type { ServerLogRecord } from './log-record.ts';
import { BlockPrefixCache } from './prefix-cache.ts';

export type TestServerOptions = DelayModel & {
  host: string;
  port: number;
  model: string;
  logPath: string | null;
  cacheBlockTokens: number;
};

export type RunningTestServer = { port: number; close(): Promise<void> };

type Body = {
  model?: unknown;
  prompt?: unknown;
  messages?: unknown;
  max_tokens?: unknown;
  max_completion_tokens?: unknown;
  stream?: unknown;
  stream_options?: { include_usage?: unknown } | null;
  ignore_eos?: unknown;
};

/** A request the test server cannot answer: a 400. */
class BadRequest extends InvalidArgumentError {}

function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== '');
}

function promptTokens(api: 'completions' | 'chat', body: Body): string[] {
  if (api === 'chat') {
    if (!Array.isArray(body.messages)) throw new BadRequest('messages must be an array');
    return body.messages.flatMap((m: { role?: unknown; content?: unknown }) => {
      if (typeof m.content !== 'string' || typeof m.role !== 'string') throw new BadRequest('bad message');
      return [m.role, ...words(m.content)];
    });
  }
  if (typeof body.prompt === 'string') return words(body.prompt);
  if (Array.isArray(body.prompt) && body.prompt.every((t) => Number.isInteger(t)))
    return body.prompt.map(String);
  throw new BadRequest('prompt must be a string or an array of token ids');
}

export function startTestServer(options: TestServerOptions): Promise<RunningTestServer> {
  const cache = new BlockPrefixCache(options.cacheBlockTokens);
  const vocabulary = wordList();
  let sequence = 0;
  let numInFlight = 0;

  const writeLog = (record: ServerLogRecord): void => {
    if (options.logPath !== null) appendFileSync(options.logPath, `${JSON.stringify(record)}\n`);
  };

  const sendError = (res: http.ServerResponse, status: number, message: string): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message, type: 'invalid_request_error', code: null } }));
  };

  const stream = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    api: 'completions' | 'chat',
    receivedAtMs: number,
    raw: string,
  ): void => {
    let body: Body;
    let tokens: string[];
    try {
      body = JSON.parse(raw) as Body;
      tokens = promptTokens(api, body);
    } catch (e) {
      sendError(res, 400, (e as Error).message);
      return;
    }
    if (body.stream !== true) {
      sendError(res, 400, 'the test server only streams (stream: true)');
      return;
    }
    const maxTokensRaw = body.max_tokens ?? body.max_completion_tokens ?? 16;
    if (typeof maxTokensRaw !== 'number' || !Number.isInteger(maxTokensRaw) || maxTokensRaw < 1) {
      sendError(res, 400, 'max_tokens must be a positive integer');
      return;
    }
    const maxTokens = maxTokensRaw;
    const includeUsage = body.stream_options?.include_usage === true;
    const mySequence = sequence++;
    numInFlight++;
    const numInFlightAtArrival = numInFlight;
    const id = `${api === 'chat' ? 'chatcmpl' : 'cmpl'}-test-${mySequence}`;
    const created = Math.floor(Date.now() / 1000);
    const model = typeof body.model === 'string' ? body.model : options.model;
    const numCachedTokens = cache.match(tokens);
    cache.insert(tokens);
    const planned = planDelays(options, mySequence, maxTokens);
    const output: string[] = [];
    const chunkAtMs: number[] = [];
    let timer: NodeJS.Timeout | null = null;
    let finished = false;

    const chunk = (payload: Record<string, unknown>): void => {
      res.write(
        `data: ${JSON.stringify({ id, object: api === 'chat' ? 'chat.completion.chunk' : 'text_completion', created, model, ...payload })}\n\n`,
      );
    };
    const choice = (text: string | null, finishReason: string | null): Record<string, unknown> =>
      api === 'chat'
        ? { index: 0, delta: text === null ? {} : { content: text }, finish_reason: finishReason }
        : { index: 0, text: text ?? '', finish_reason: finishReason };

    const done = (completed: boolean): void => {
      if (finished) return;
      const endAtMs = nowMs(); // before the bookkeeping below, which the client does not wait for
      finished = true;
      numInFlight--;
      if (timer !== null) clearTimeout(timer);
      // A chat reply follows the assistant's role marker, as a chat template would put it.
      cache.insert(api === 'chat' ? [...tokens, 'assistant', ...output] : [...tokens, ...output]);
      writeLog({
        id,
        api,
        sequence: mySequence,
        receivedAtMs,
        chunkAtMs,
        endAtMs,
        plannedTtftMs: planned.ttftMs,
        plannedItlMs: planned.itlMs,
        slowTtft: planned.slowTtft,
        slowItl: planned.slowItl,
        numPromptTokens: tokens.length,
        numOutputTokens: output.length,
        numCachedTokens,
        maxTokens,
        ignoreEos: body.ignore_eos === true,
        numInFlightAtArrival,
        completed,
      });
    };
    res.on('close', () => done(false));

    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    if (api === 'chat')
      chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
    // Token k is due at receivedAt + ttft + itl[0] + ... + itl[k-1]; timers aim at these
    // absolute times so lateness does not accumulate, and the log keeps the real write times.
    let dueAtMs = receivedAtMs + planned.ttftMs;
    const emit = (): void => {
      const index = output.length;
      const word = vocabulary[(mySequence * 7 + index * 13) % vocabulary.length] as string;
      const text = index === 0 ? word : ` ${word}`;
      output.push(word);
      chunkAtMs.push(nowMs());
      chunk({ choices: [choice(text, null)] });
      if (output.length < maxTokens) {
        dueAtMs += planned.itlMs[index] as number;
        timer = setTimeout(emit, Math.max(0, dueAtMs - nowMs()));
        return;
      }
      chunk({ choices: [choice(null, 'length')] });
      if (includeUsage) {
        chunk({
          choices: [],
          usage: {
            prompt_tokens: tokens.length,
            completion_tokens: output.length,
            total_tokens: tokens.length + output.length,
            prompt_tokens_details: { cached_tokens: numCachedTokens },
          },
        });
      }
      res.end('data: [DONE]\n\n');
      done(true);
    };
    timer = setTimeout(emit, Math.max(0, dueAtMs - nowMs()));
    void req;
  };

  const server = http.createServer(
    { noDelay: true, keepAliveTimeout: 60_000, requestTimeout: 0 },
    (req, res) => {
      const receivedAtMs = nowMs();
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && (path === '/health' || path === '/v1/models')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify(
            path === '/health'
              ? { status: 'ok' }
              : { object: 'list', data: [{ id: options.model, object: 'model' }] },
          ),
        );
        return;
      }
      const api =
        path === '/v1/completions' ? 'completions' : path === '/v1/chat/completions' ? 'chat' : null;
      if (req.method !== 'POST' || api === null) {
        sendError(res, 404, `no route ${req.method} ${path}`);
        return;
      }
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (s: string) => {
        raw += s;
      });
      req.on('end', () => stream(req, res, api, receivedAtMs, raw));
    },
  );

  return new Promise((resolve, reject) => {
    server.once('error', (cause) =>
      reject(new TestServerError(`cannot listen on ${options.host}:${options.port}`, { cause })),
    );
    server.listen(options.port, options.host, () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
