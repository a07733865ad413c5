// The whole disaggregated cluster through the official openai client: router -> decode worker
// (role decode) -> the prefill worker the router names (role prefill; router threshold 0), KV over
// kvtransfer, on every fixture's text and chat cases, streamed and not. Greedy outputs must equal
// a unified worker's for the same prompt ids; the decode worker's log must show that the prefill
// worker ran each prompt and that kvtransfer moved exactly the uncached prompt pages.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createGrpcClient } from '@tandem/common';
import { Worker } from '@tandem/proto';
import type { RouterApp } from '@tandem/router';
import { TextTokenizer } from '@tandem/tokenizer';
import { expectedKvTransport } from '@tandem/worker/testing';
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
  text_cases: { prompt: string; prompt_ids: number[] }[];
  chat_cases?: {
    messages: { role: 'user' | 'system' | 'assistant'; content: string }[];
    prompt_ids: number[];
  }[];
}

const models = [
  ...['tiny-llama', 'tiny-llama-bf16', 'tiny-llama31', 'tiny-qwen2', 'tiny-qwen3'].map((name) => ({
    name,
    dir: join(fixturesDir, name),
  })),
  { name: 'tandem-demo-code', dir: demoModelDir },
];
const vllmExtras = { ignore_eos: true } as Record<string, unknown>;

interface RemotePrefillLog {
  numPromptTokens: number;
  numCachedHere: number;
  bytes: number;
  transport: string | null;
}

function remotePrefills(decode: WorkerProcess): RemotePrefillLog[] {
  const records: RemotePrefillLog[] = [];
  for (const line of decode.output().split('\n')) {
    if (!line.includes('"remote prefill done"')) continue;
    records.push(JSON.parse(line) as RemotePrefillLog);
  }
  return records;
}

/** A unified worker's greedy output for prompt ids (gRPC straight to it): text and token count. */
async function unifiedOutput(
  worker: WorkerProcess,
  modelDir: string,
  promptIds: number[],
  maxTokens: number,
) {
  const client = createGrpcClient(Worker, worker.grpcAddress);
  const tokenIds: number[] = [];
  try {
    const stream = client.generate({
      requestId: `unified-${Math.random().toString(36).slice(2)}`,
      promptTokenIds: promptIds,
      sampling: { temperature: 0 },
      maxTokens,
      ignoreEos: true,
      n: 1,
    });
    for await (const response of stream)
      for (const delta of response.choices) tokenIds.push(...delta.tokenIds);
  } finally {
    client.close();
  }
  return { text: (await TextTokenizer.load(modelDir)).decode(tokenIds), numTokens: tokenIds.length };
}

describe('PD cluster through the router', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  const workers = new Map<
    string,
    { decode: WorkerProcess; prefill: WorkerProcess; unified: WorkerProcess }
  >();
  const routers = new Map<string, RouterApp>();

  before(async () => {
    backplane = await startBackplane();
    const start = (dir: string, workerId: string, extraArgs: string[]) =>
      startWorker({
        modelDir: dir,
        workerId,
        natsUrl: backplane.nats.url,
        redisUrl: backplane.redis.url,
        extraArgs: ['--num-pages', '256', ...extraArgs], // 18 workers: keep each pool small
      });
    await Promise.all(
      models.map(async (model) => {
        const id = model.name.replaceAll('.', '_');
        // Decode first: it sees the prefill worker's join announcement.
        const decode = await start(model.dir, `${id}-d`, [
          '--role',
          'decode',
          '--disagg-threshold',
          '0',
          '--log-level',
          'info',
        ]);
        const [prefill, unified] = await Promise.all([
          start(model.dir, `${id}-p`, ['--role', 'prefill']),
          // The reference: under another served name, so the router never routes to it.
          start(model.dir, `${id}-u`, ['--served-model-name', `${model.name}-unified`]),
        ]);
        workers.set(model.name, { decode, prefill, unified });
      }),
    );
    for (const model of models) {
      // The router's only worker for this model is the decode one (prefill workers are not routed to).
      const router = await startRouter(model.dir, backplane, { policy: 'round_robin' });
      routers.set(model.name, router);
      await waitForWorkers(router, 1);
    }
  });

  after(async () => {
    await Promise.all([...routers.values()].map((router) => router.close()));
    await Promise.all(
      [...workers.values()].flatMap((w) => [w.decode.stop(), w.prefill.stop(), w.unified.stop()]),
    );
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  for (const model of models) {
    test(`${model.name}: PD == unified on text (completions) and chat cases, P ran each prompt`, async () => {
      const golden = JSON.parse(readFileSync(join(model.dir, 'golden.json'), 'utf8')) as Golden;
      const { decode, prefill, unified } = workers.get(model.name)!;
      const router = routers.get(model.name)!;
      const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const info = await (async () => {
        const grpcClient = createGrpcClient(Worker, decode.grpcAddress);
        try {
          return await grpcClient.info({});
        } finally {
          grpcClient.close();
        }
      })();
      const layout = info.kvLayout!;
      const cases = [
        ...golden.text_cases.map((c) => ({ kind: 'text' as const, c })),
        ...(golden.chat_cases ?? []).map((c) => ({ kind: 'chat' as const, c })),
      ];
      for (const [i, { kind, c }] of cases.entries()) {
        const expected = await unifiedOutput(unified, model.dir, c.prompt_ids, 24);
        const before = remotePrefills(decode).length;
        const { text, usage } =
          kind === 'text' && 'prompt' in c
            ? await client.completions
                .create({
                  model: model.name,
                  prompt: c.prompt,
                  temperature: 0,
                  max_tokens: 24,
                  ...vllmExtras,
                })
                .then((r) => ({ text: r.choices[0]!.text, usage: r.usage }))
            : await client.chat.completions
                .create({
                  model: model.name,
                  messages: 'messages' in c ? c.messages : [],
                  temperature: 0,
                  max_tokens: 24,
                  ...vllmExtras,
                })
                .then((r) => ({ text: r.choices[0]!.message.content, usage: r.usage }));
        assert.equal(text, expected.text, `${model.name} ${kind} case ${i}`);
        // The same prompt ids in, as many tokens out as the unified worker produced.
        assert.equal(usage?.prompt_tokens, c.prompt_ids.length, `${kind} case ${i}: prompt tokens`);
        assert.equal(usage?.completion_tokens, expected.numTokens, `${kind} case ${i}: completion tokens`);
        const deadline = Date.now() + 2000; // the log line crosses a pipe
        while (remotePrefills(decode).length === before && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        const records = remotePrefills(decode);
        assert.equal(records.length, before + 1, `${kind} case ${i}: the prefill worker ran the prompt`);
        const record = records.at(-1)!;
        assert.equal(record.numPromptTokens, c.prompt_ids.length);
        const numPages =
          Math.ceil(record.numPromptTokens / layout.pageSize) - record.numCachedHere / layout.pageSize;
        assert.equal(record.bytes, numPages * layout.numLayers * 2 * Number(layout.pageBytes), 'bytes moved');
        // The prefill worker logs each connection's transport and why (a GPU pool on TCP warns).
        const senderLines = prefill
          .output()
          .split('\n')
          .filter((line) => line.includes('kv sender connected') || line.includes('over TCP'));
        assert.equal(
          record.transport,
          expectedKvTransport(),
          `the transport that carried the KV; the prefill worker said:\n${senderLines.join('\n')}`,
        );
      }
    });
  }
});
