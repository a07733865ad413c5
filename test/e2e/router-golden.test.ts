// Every fixture's golden text through the official openai client -> router -> 2 unified worker
// processes (real NATS, Redis, gRPC): text_cases via /v1/completions, chat_cases via
// /v1/chat/completions (temperature 0, 24 tokens, EOS ignored), and the demo checkpoint's
// 48-token case, streamed and not.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RouterApp } from '@tandem/router';
import OpenAI from 'openai';
import {
  demoModelDir,
  fixturesDir,
  startBackplane,
  startRouter,
  startWorker,
  type WorkerProcess,
  waitForWorkers,
} from './router-cluster.ts';

interface Golden {
  text_cases: { prompt: string; prompt_ids: number[]; greedy_ids: number[]; greedy_text: string }[];
  chat_cases?: {
    messages: { role: 'user' | 'system' | 'assistant'; content: string }[];
    prompt_ids: number[];
    greedy_text: string;
  }[];
}

const fixtures = ['tiny-llama', 'tiny-llama-bf16', 'tiny-llama31', 'tiny-qwen2', 'tiny-qwen3'];
const models = [
  ...fixtures.map((name) => ({ name, dir: join(fixturesDir, name) })),
  { name: 'tandem-demo-code', dir: demoModelDir },
];

const vllmExtras = { ignore_eos: true } as Record<string, unknown>;

describe('golden outputs through the router', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  const workers: WorkerProcess[] = [];
  const routers = new Map<string, RouterApp>();

  before(async () => {
    backplane = await startBackplane();
    // Two workers per model; the routers filter announcements by model name.
    const started = await Promise.all(
      models.flatMap((model) =>
        [0, 1].map((i) =>
          startWorker({
            modelDir: model.dir,
            workerId: `${model.name.replaceAll('.', '_')}-w${i}`,
            natsUrl: backplane.nats.url,
            redisUrl: backplane.redis.url,
          }),
        ),
      ),
    );
    workers.push(...started);
    for (const model of models) {
      const router = await startRouter(model.dir, backplane, { policy: 'round_robin' });
      routers.set(model.name, router);
      await waitForWorkers(router, 2);
    }
  });

  after(async () => {
    await Promise.all([...routers.values()].map((router) => router.close()));
    await Promise.all(workers.map((worker) => worker.stop()));
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  for (const model of models) {
    test(`${model.name}: text_cases via completions and chat_cases via chat`, async () => {
      const golden = JSON.parse(readFileSync(join(model.dir, 'golden.json'), 'utf8')) as Golden;
      const router = routers.get(model.name)!;
      const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const maxTokens = model.name === 'tandem-demo-code' ? 48 : 24;
      for (const [i, testCase] of golden.text_cases.entries()) {
        const completion = await client.completions.create({
          model: model.name,
          prompt: testCase.prompt,
          temperature: 0,
          max_tokens: maxTokens,
          ...vllmExtras,
        });
        assert.equal(completion.choices[0]!.text, testCase.greedy_text, `${model.name} text ${i}`);
        assert.equal(
          completion.usage!.prompt_tokens,
          testCase.prompt_ids.length,
          `text case ${i} prompt tokens`,
        );
        assert.equal(completion.usage!.completion_tokens, maxTokens);
        assert.equal(completion.choices[0]!.finish_reason, 'length');
        // The same case streamed: the chunks concatenate to the same text.
        const stream = await client.completions.create({
          model: model.name,
          prompt: testCase.prompt,
          temperature: 0,
          max_tokens: maxTokens,
          stream: true,
          ...vllmExtras,
        });
        let streamed = '';
        for await (const chunk of stream) streamed += chunk.choices[0]?.text ?? '';
        assert.equal(streamed, testCase.greedy_text, `${model.name} text ${i}`);
      }
      for (const [i, testCase] of (golden.chat_cases ?? []).entries()) {
        const chat = await client.chat.completions.create({
          model: model.name,
          messages: testCase.messages,
          temperature: 0,
          max_tokens: 24,
          ...vllmExtras,
        });
        assert.equal(chat.choices[0]!.message.content, testCase.greedy_text, `${model.name} chat ${i}`);
        assert.equal(chat.usage!.prompt_tokens, testCase.prompt_ids.length, `chat case ${i} prompt tokens`);
        const stream = await client.chat.completions.create({
          model: model.name,
          messages: testCase.messages,
          temperature: 0,
          max_tokens: 24,
          stream: true,
          ...vllmExtras,
        });
        let streamed = '';
        for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
        assert.equal(streamed, testCase.greedy_text, `${model.name} chat ${i}`);
      }
    });
  }
});
