// The streaming client against small real HTTP servers that send exactly the bytes each case
// needs: missing usage, error events, role-only chunks, HTTP errors, resets and timeouts.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type ClientOptions, createAgent, type OutgoingRequest, sendRequest } from '../src/client.ts';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

const sse = (payload: unknown): string => `data: ${JSON.stringify(payload)}\n\n`;
const text = (t: string): unknown => ({ id: 'x', choices: [{ index: 0, text: t, finish_reason: null }] });
const later = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('sendRequest', () => {
  let handler: Handler = () => {};
  let server: http.Server;
  let options: ClientOptions;
  const request: OutgoingRequest = {
    api: 'completions',
    prompt: [1, 2, 3],
    messages: null,
    maxOutputTokens: 3,
    numPlannedPromptTokens: 3,
    conversationId: 0,
    turn: 0,
    groupId: null,
  };

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => handler(req, res, body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/completions`);
    options = {
      url,
      model: 'm',
      apiKey: 'k',
      ignoreEos: true,
      temperature: 0,
      timeoutMs: 2000,
      extraBody: {},
      agent: createAgent(url),
    };
  });
  after(async () => {
    options.agent.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('sends the OpenAI streaming body; without usage counts chunks as tokens', async () => {
    let seen: Record<string, unknown> = {};
    let auth = '';
    handler = async (req, res, body) => {
      seen = JSON.parse(body) as Record<string, unknown>;
      auth = req.headers.authorization ?? '';
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse(text('a')));
      await later(30);
      res.write(sse(text('b')) + sse(text('')) + sse(text('c')));
      res.end('data: [DONE]\n\n');
    };
    const { record, outputText } = await sendRequest(request, options);
    assert.deepEqual(seen, {
      model: 'm',
      max_tokens: 3,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      ignore_eos: true,
      prompt: [1, 2, 3],
    });
    assert.equal(auth, 'Bearer k');
    assert.equal(outputText, 'abc');
    assert.ok(record.ok);
    assert.equal(record.responseId, 'x');
    assert.equal(record.usageReported, false);
    assert.equal(record.numPromptTokens, null);
    assert.equal(record.numOutputTokens, 3, 'the empty chunk is not a token');
    assert.equal(record.chunkOffsetsMs.length, 3);
    // b was written >= 30 ms after the request arrived (causality holds however loaded the
    // machine is); b and c were written together and arrive in one read, at the same time.
    assert.ok((record.chunkOffsetsMs[1] ?? 0) >= 30, `b at ${record.chunkOffsetsMs[1]} ms`);
    assert.equal(record.itlMs[1], 0, 'b and c arrived in one write');
    assert.ok(record.tpotMs !== null && record.ttftMs !== null);
    assert.ok(Math.abs(record.tpotMs - (record.e2eMs - record.ttftMs) / 2) < 1e-9);
  });

  test('chat: the role-only first chunk is not the first token; usage and cached tokens are read', async () => {
    handler = async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse({ id: 'c', choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] }));
      await later(40);
      res.write(sse({ id: 'c', choices: [{ index: 0, delta: { reasoning_content: 'hm' } }] }));
      res.write(sse({ id: 'c', choices: [{ index: 0, delta: { content: ' ok' }, finish_reason: 'stop' }] }));
      res.write(
        sse({
          id: 'c',
          choices: [],
          usage: { prompt_tokens: 9, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 4 } },
        }),
      );
      res.end('data: [DONE]\n\n');
    };
    const { record, outputText } = await sendRequest(
      { ...request, api: 'chat', prompt: null, messages: [{ role: 'user', content: 'hi' }] },
      options,
    );
    assert.ok(record.ok);
    assert.ok((record.ttftMs ?? 0) >= 35, `TTFT ${record.ttftMs} must wait for the first content`);
    assert.equal(outputText, 'hm ok');
    assert.deepEqual([record.numPromptTokens, record.numOutputTokens, record.numCachedTokens], [9, 2, 4]);
  });

  test('an error event, an HTTP error, a reset and a timeout each fail the request with its cause', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse(text('a')));
      res.end(sse({ error: { message: 'worker lost', type: 'server_error' } }));
    };
    let { record } = await sendRequest(request, options);
    assert.equal(record.ok, false);
    assert.match(record.error ?? '', /BenchStreamError: error event: .*worker lost/);

    handler = (_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end('{"error":{"message":"queue full"}}');
    };
    ({ record } = await sendRequest(request, options));
    assert.match(record.error ?? '', /BenchHttpError: HTTP 429: .*queue full/);

    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse(text('a')));
      setTimeout(() => res.socket?.destroy(), 10);
    };
    ({ record } = await sendRequest(request, options));
    assert.equal(record.ok, false);
    assert.ok(record.error !== null);

    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse(text('a')));
    };
    ({ record } = await sendRequest(request, { ...options, timeoutMs: 100 }));
    assert.equal(record.ok, false);
    assert.match(record.error ?? '', /timed out after 100 ms/);

    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('data: [DONE]\n\n');
    };
    ({ record } = await sendRequest(request, options));
    assert.deepEqual([record.ok, record.error], [false, 'no output tokens']);
  });
});
