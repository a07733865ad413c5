// Two models behind one `tandem up`, in its default (disaggregated) layout: a prefill and a
// decode worker per model, one router. GET /v1/models lists both; each answers with its own
// golden text; an unknown model is OpenAI's 404; constrained requests work through the prefill
// workers (which sample the first token under the mask) for both models.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { freePort, startRedisServer } from '@tandem/common/testing';
import OpenAI from 'openai';
import { demoModelDir, fixturesDir, repoRoot } from './router-cluster.ts';

interface Golden {
  text_cases: { prompt: string; greedy_ids: number[]; greedy_text: string }[];
}

test('tandem up serves two models, each with its own golden text', async () => {
  const models = [
    { name: 'tiny-qwen3', dir: join(fixturesDir, 'tiny-qwen3') },
    { name: 'tandem-demo-code', dir: demoModelDir },
  ];
  const redisServer = await startRedisServer();
  const natsPort = await freePort();
  const routerPort = await freePort();
  const child = spawn(
    join(repoRoot, 'services', 'cli', 'bin', 'tandem'),
    [
      'up',
      ...models.flatMap((model) => ['--model', model.dir]),
      '--port',
      String(routerPort),
      '--nats',
      `nats://127.0.0.1:${natsPort}`,
      '--redis',
      redisServer.url,
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  try {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const url = await new Promise<string>((resolve, reject) => {
      lines.on('line', (line) => {
        const match =
          /tandem is up: (http:\/\/\S+)\/v1 \(models tiny-qwen3, tandem-demo-code, 2 decode workers, 2 prefill workers/.exec(
            line,
          );
        if (match?.[1] !== undefined) resolve(match[1]);
      });
      child.once('exit', (code) => reject(new Error(`tandem up exited (${code}): ${stderr}`)));
    });
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    assert.deepEqual(
      (await client.models.list()).data.map((m) => m.id),
      models.map((m) => m.name),
    );
    for (const model of models) {
      assert.equal((await client.models.retrieve(model.name)).id, model.name);
      const golden = JSON.parse(readFileSync(join(model.dir, 'golden.json'), 'utf8')) as Golden;
      const outputs = await Promise.all(
        golden.text_cases.map((c) =>
          client.completions.create({
            model: model.name,
            prompt: c.prompt,
            temperature: 0,
            max_tokens: c.greedy_ids.length,
            ...({ ignore_eos: true } as unknown as Record<string, never>),
          }),
        ),
      );
      outputs.forEach((completion, i) => {
        assert.equal(completion.model, model.name);
        assert.equal(
          completion.choices[0]?.text,
          golden.text_cases[i]?.greedy_text,
          `${model.name} case ${i}`,
        );
      });
      // Constrained through a prefill worker: the first token is sampled there, under the mask.
      for (const stream of [false, true]) {
        const body = {
          model: model.name,
          messages: [{ role: 'user' as const, content: 'pick' }],
          temperature: 1,
          seed: 11,
          max_tokens: 300,
          response_format: {
            type: 'json_schema' as const,
            json_schema: {
              name: 'pick',
              strict: true,
              schema: {
                type: 'object',
                properties: {
                  color: { enum: ['red', 'green'] },
                  n: { type: 'integer', minimum: 1, maximum: 9 },
                },
                required: ['color', 'n'],
                additionalProperties: false,
              },
            },
          },
        };
        let text = '';
        if (stream) {
          for await (const chunk of await client.chat.completions.create({ ...body, stream: true }))
            text += chunk.choices[0]?.delta.content ?? '';
        } else {
          text = (await client.chat.completions.create(body)).choices[0]?.message.content ?? '';
        }
        const value = JSON.parse(text) as { color: string; n: number };
        assert.ok(['red', 'green'].includes(value.color) && value.n >= 1 && value.n <= 9, text);
      }
    }
    await assert.rejects(
      client.completions.create({ model: 'tiny-llama', prompt: 'x', max_tokens: 2 }),
      (error: unknown) => error instanceof OpenAI.NotFoundError && error.code === 'model_not_found',
    );
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, stderr);
  } finally {
    clearTimeout(killer);
    if (child.exitCode === null) child.kill('SIGKILL');
    await redisServer.stop();
  }
});
