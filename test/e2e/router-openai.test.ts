// The router's OpenAI surface through the official openai client (maxRetries 0) against a real
// cluster: 2 unified worker processes, NATS, Redis, the router over HTTP.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createGrpcClient } from '@tandem/common';
import { Worker } from '@tandem/proto';
import { defaultRouterOptions, type RouterApp } from '@tandem/router';
import OpenAI from 'openai';
import {
  fixturesDir,
  startBackplane,
  startRouter,
  startWorker,
  type WorkerProcess,
  waitFor,
  waitForWorkers,
} from './router-cluster.ts';

const modelDir = join(fixturesDir, 'tiny-llama');
const model = 'tiny-llama';
const golden = JSON.parse(readFileSync(join(modelDir, 'golden.json'), 'utf8')) as {
  text_cases: { prompt: string; prompt_ids: number[]; decode_prompt: string; greedy_text: string }[];
  chat_cases: { messages: { role: 'user'; content: string }[]; greedy_text: string }[];
};
const extras = (body: Record<string, unknown>) => body as Record<string, never>;

/** The param and code of the error a call throws, checking its class. */
async function rejection(
  call: Promise<unknown>,
  errorClass: { prototype: InstanceType<typeof OpenAI.APIError>; name: string },
) {
  try {
    await call;
  } catch (error) {
    assert.ok(
      error instanceof (errorClass as unknown as typeof OpenAI.APIError),
      `expected ${errorClass.name}, got ${String(error)}`,
    );
    return {
      param: error.param ?? null,
      code: error.code ?? null,
      status: error.status,
      headers: error.headers,
    };
  }
  assert.fail('expected the call to fail');
}

describe('OpenAI API through the router', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  let workers: WorkerProcess[] = [];
  let router: RouterApp;
  let client: OpenAI;

  before(async () => {
    backplane = await startBackplane();
    workers = await Promise.all(
      [0, 1].map((i) =>
        startWorker({
          modelDir,
          workerId: `api-w${i}`,
          natsUrl: backplane.nats.url,
          redisUrl: backplane.redis.url,
        }),
      ),
    );
    router = await startRouter(modelDir, backplane);
    await waitForWorkers(router, 2);
    client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });

  after(async () => {
    await router?.close();
    await Promise.all(workers.map((worker) => worker.stop()));
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  test('models, health and metrics', async () => {
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [model],
    );
    const health = await fetch(`${router.url}/health`);
    assert.equal(health.status, 200);
    await client.completions.create({ model, prompt: 'hi', max_tokens: 2 });
    const metrics = await (await fetch(`${router.url}/metrics`)).text();
    assert.match(
      metrics,
      /tandem_router_requests_total\{model="tiny-llama",route="POST \/v1\/completions",status="200",code=""\} \d+/,
    );
    assert.match(metrics, /tandem_router_workers\{model="tiny-llama"\} 2/);
  });

  test('chat with n = 2 returns two choices and usage with cached_tokens', async () => {
    const chat = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'Tell me a story.' }],
      n: 2,
      max_tokens: 6,
      temperature: 1,
      seed: 7,
      ...extras({ ignore_eos: true }),
    });
    assert.equal(chat.object, 'chat.completion');
    assert.deepEqual(
      chat.choices.map((c) => [c.index, c.message.role, c.finish_reason]),
      [
        [0, 'assistant', 'length'],
        [1, 'assistant', 'length'],
      ],
    );
    assert.equal(chat.usage!.completion_tokens, 12);
    assert.equal(chat.usage!.total_tokens, chat.usage!.prompt_tokens + 12);
    assert.equal(typeof chat.usage!.prompt_tokens_details!.cached_tokens, 'number');
  });

  test('streamed chat: role first, then content, finish_reason, the usage chunk and [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model,
      messages: golden.chat_cases[0]!.messages,
      temperature: 0,
      max_tokens: 24,
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
      ...extras({ ignore_eos: true }),
    });
    const texts = ['', ''];
    const firstDelta = new Map<number, unknown>();
    const finish = new Map<number, string>();
    let usageChunks = 0;
    let lastUsage: OpenAI.CompletionUsage | null = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) {
        usageChunks++;
        lastUsage = chunk.usage;
        assert.deepEqual(chunk.choices, []);
        continue;
      }
      assert.equal(chunk.usage, null);
      for (const choice of chunk.choices) {
        if (!firstDelta.has(choice.index)) firstDelta.set(choice.index, choice.delta);
        texts[choice.index] += choice.delta.content ?? '';
        if (choice.finish_reason) finish.set(choice.index, choice.finish_reason);
      }
    }
    assert.deepEqual(firstDelta.get(0), { role: 'assistant', content: '' });
    assert.deepEqual(firstDelta.get(1), { role: 'assistant', content: '' });
    assert.deepEqual(texts, [golden.chat_cases[0]!.greedy_text, golden.chat_cases[0]!.greedy_text]);
    assert.deepEqual([...finish.entries()].sort(), [
      [0, 'length'],
      [1, 'length'],
    ]);
    assert.equal(usageChunks, 1);
    assert.equal(lastUsage!.completion_tokens, 48);

    const raw = await fetch(`${router.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model,
        messages: [{ role: 'user', content: 'x' }],
        max_tokens: 2,
        stream: true,
      }),
    });
    assert.equal(raw.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const body = await raw.text();
    assert.ok(body.endsWith('data: [DONE]\n\n'), body);
    assert.ok(body.startsWith('data: {'), body);
  });

  test("vLLM's continuous_usage_stats puts running usage on every chunk", async () => {
    const stream = await client.completions.create({
      model,
      prompt: golden.text_cases[0]!.prompt,
      temperature: 0,
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true, ...extras({ continuous_usage_stats: true }) },
      ...extras({ ignore_eos: true }),
    });
    const completionCounts: number[] = [];
    let promptTokens = -1;
    for await (const chunk of stream) {
      assert.ok(chunk.usage, 'every chunk carries usage');
      promptTokens = chunk.usage.prompt_tokens;
      completionCounts.push(chunk.usage.completion_tokens);
    }
    assert.ok(promptTokens > 0);
    assert.deepEqual(
      completionCounts,
      [...completionCounts].sort((a, b) => a - b),
    );
    assert.equal(completionCounts.at(-1), 8);
  });

  test('chat logprobs with top_logprobs, and legacy completion logprobs', async () => {
    const chat = await client.chat.completions.create({
      model,
      messages: golden.chat_cases[0]!.messages,
      temperature: 0,
      max_tokens: 8,
      logprobs: true,
      top_logprobs: 3,
      ...extras({ ignore_eos: true }),
    });
    const entries = chat.choices[0]!.logprobs!.content!;
    assert.equal(entries.length, 8);
    assert.equal(entries.map((e) => e.token).join(''), chat.choices[0]!.message.content);
    for (const entry of entries) {
      assert.ok(entry.logprob <= 0);
      assert.equal(entry.top_logprobs.length, 3);
      // Greedy: the chosen token is the most likely one.
      assert.ok(Math.abs(entry.top_logprobs[0]!.logprob - entry.logprob) < 1e-5);
      assert.deepEqual(entry.bytes, [...Buffer.from(entry.token)]);
    }
    const completion = await client.completions.create({
      model,
      prompt: golden.text_cases[0]!.prompt,
      temperature: 0,
      max_tokens: 6,
      logprobs: 2,
      ...extras({ ignore_eos: true }),
    });
    const logprobs = completion.choices[0]!.logprobs!;
    assert.equal(logprobs.tokens!.length, 6);
    assert.equal(logprobs.token_logprobs!.length, 6);
    assert.equal(logprobs.top_logprobs!.length, 6);
    assert.equal(logprobs.tokens!.join(''), completion.choices[0]!.text);
    assert.equal(logprobs.text_offset![0], 0);
    for (const top of logprobs.top_logprobs!) assert.equal(Object.keys(top).length <= 2, true);
  });

  test('stop strings end the text before the stop (or with it), streamed without leaking it', async () => {
    const { prompt, greedy_text: full } = golden.text_cases[0]!;
    const stop = full.slice(10, 14);
    const at = full.indexOf(stop);
    const base = {
      model,
      prompt,
      temperature: 0,
      max_tokens: 24,
      stop: [stop],
      ...extras({ ignore_eos: true }),
    };
    const plain = await client.completions.create(base);
    assert.equal(plain.choices[0]!.text, full.slice(0, at));
    assert.equal(plain.choices[0]!.finish_reason, 'stop');
    assert.ok(plain.usage!.completion_tokens < 24);
    const kept = await client.completions.create({
      ...base,
      ...extras({ include_stop_str_in_output: true }),
    });
    assert.equal(kept.choices[0]!.text, full.slice(0, at + stop.length));
    const stream = await client.completions.create({ ...base, stream: true });
    const pieces: string[] = [];
    let finishReason: string | null = null;
    for await (const chunk of stream) {
      pieces.push(chunk.choices[0]?.text ?? '');
      finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
    }
    assert.equal(pieces.join(''), full.slice(0, at));
    assert.equal(finishReason, 'stop');
    for (const piece of pieces) assert.ok(!piece.includes(stop));
  });

  test('a batch of prompts (text and token ids) with n = 2 and echo', async () => {
    const [first, second] = golden.text_cases;
    const completion = await client.completions.create({
      model,
      prompt: [first!.prompt, second!.prompt_ids] as unknown as string[],
      n: 2,
      temperature: 0,
      max_tokens: 24,
      echo: true,
      ...extras({ ignore_eos: true }),
    });
    assert.deepEqual(
      completion.choices.map((c) => [c.index, c.text]),
      [
        [0, first!.prompt + first!.greedy_text],
        [1, first!.prompt + first!.greedy_text],
        [2, second!.decode_prompt + second!.greedy_text],
        [3, second!.decode_prompt + second!.greedy_text],
      ],
    );
    assert.equal(completion.usage!.completion_tokens, 4 * 24);
  });

  test('bad parameters, an unknown model and an over-long prompt arrive as typed errors naming param', async () => {
    const messages = [{ role: 'user' as const, content: 'hi' }];
    let error = await rejection(
      client.chat.completions.create({ model, messages, temperature: 5 }),
      OpenAI.BadRequestError,
    );
    assert.equal(error.param, 'temperature');
    error = await rejection(
      client.chat.completions.create({ model, messages, n: 0 }),
      OpenAI.BadRequestError,
    );
    assert.equal(error.param, 'n');
    error = await rejection(
      client.chat.completions.create({ model, messages, top_logprobs: 2 }),
      OpenAI.BadRequestError,
    );
    assert.equal(error.param, 'top_logprobs');
    error = await rejection(
      client.completions.create({ model, prompt: 'x', max_tokens: -3 }),
      OpenAI.BadRequestError,
    );
    assert.equal(error.param, 'max_tokens');
    error = await rejection(
      client.chat.completions.create({ model: 'no-such-model', messages }),
      OpenAI.NotFoundError,
    );
    assert.equal(error.param, 'model');
    assert.equal(error.code, 'model_not_found');
    const longPrompt = 'hello '.repeat(5000);
    error = await rejection(client.completions.create({ model, prompt: longPrompt }), OpenAI.BadRequestError);
    assert.equal(error.param, 'prompt');
    assert.equal(error.code, 'context_length_exceeded');
    error = await rejection(
      client.chat.completions.create({ model, messages: [{ role: 'user', content: longPrompt }] }),
      OpenAI.BadRequestError,
    );
    assert.equal(error.param, 'messages');
    error = await rejection(
      client.completions.create({ model, prompt: 'hi', max_tokens: 100_000 }),
      OpenAI.BadRequestError,
    );
    assert.equal(error.param, 'max_tokens');
    const raw = await fetch(`${router.url}/v1/completions`, { method: 'POST', body: '{not json' });
    assert.equal(raw.status, 400);
    const body = (await raw.json()) as { error: { type: string; message: string } };
    assert.equal(body.error.type, 'invalid_request_error');
  });

  test('x-request-id comes back and names the routing record', async () => {
    const { data, response } = await client.completions
      .create(
        { model, prompt: 'routing record', max_tokens: 2 },
        { headers: { 'x-request-id': 'my-request-1' } },
      )
      .withResponse();
    assert.equal(response.headers.get('x-request-id'), 'my-request-1');
    assert.equal(data.id, 'cmpl-my-request-1');
    const record = (await (await fetch(`${router.url}/debug/routing/my-request-1`)).json()) as {
      decisions: {
        policy: string;
        workerId: string;
        candidates: { workerId: string; terms: Record<string, number> }[];
      }[];
    };
    assert.equal(record.decisions[0]!.policy, 'cache_aware');
    assert.equal(record.decisions[0]!.candidates.length, 2);
    assert.ok('uncachedTokens' in record.decisions[0]!.candidates[0]!.terms);
    const missing = await fetch(`${router.url}/debug/routing/nope`);
    assert.equal(missing.status, 404);
  });

  test('a full admission queue answers 429 with Retry-After', async () => {
    const small = await startRouter(modelDir, backplane, {
      admission: { ...defaultRouterOptions.admission, maxConcurrent: 1, maxQueued: 0, retryAfterMs: 2000 },
    });
    try {
      await waitForWorkers(small, 2);
      const smallClient = new OpenAI({ baseURL: `${small.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const long = smallClient.completions.create({
        model,
        prompt: 'long',
        max_tokens: 400,
        ...extras({ ignore_eos: true }),
      });
      await waitFor('the first request to be admitted', () =>
        small.registry.all().some((w) => w.lastPickedSeq > 0),
      );
      const error = await rejection(
        smallClient.completions.create({ model, prompt: 'second', max_tokens: 2 }),
        OpenAI.RateLimitError,
      );
      assert.equal(error.status, 429);
      assert.equal(error.headers?.get('retry-after'), '2');
      assert.equal((await long).choices[0]!.finish_reason, 'length');
    } finally {
      await small.close();
    }
  });

  test('a client that disconnects cancels the worker stream', async () => {
    const controller = new AbortController();
    const stream = await client.completions.create(
      { model, prompt: 'cancel me', max_tokens: 4000, stream: true, ...extras({ ignore_eos: true }) },
      { signal: controller.signal },
    );
    let numChunks = 0;
    const startedAtMs = Date.now();
    try {
      for await (const _chunk of stream) {
        numChunks++;
        if (numChunks === 20) controller.abort();
      }
    } catch (error) {
      assert.ok(error instanceof OpenAI.APIUserAbortError, String(error));
    }
    const msPerChunk = (Date.now() - startedAtMs) / numChunks;
    const abortedAtMs = Date.now();
    const clients = workers.map((w) => createGrpcClient(Worker, w.grpcAddress));
    try {
      let running = 1;
      while (running > 0) {
        const infos = await Promise.all(clients.map((c) => c.info({})));
        running = infos.reduce(
          (sum, info) => sum + (info.load?.numRunning ?? 0) + (info.load?.numWaiting ?? 0),
          0,
        );
        if (running > 0) await new Promise((resolve) => setTimeout(resolve, 20));
        assert.ok(
          Date.now() - abortedAtMs < 3000,
          'the worker still runs the request 3 s after the disconnect',
        );
      }
    } finally {
      for (const c of clients) c.close();
    }
    // The request would have run far longer than it took to go away.
    const cancelMs = Date.now() - abortedAtMs;
    assert.ok(cancelMs < (4000 - numChunks) * msPerChunk * 0.5, `cancel took ${cancelMs} ms`);
  });
});
