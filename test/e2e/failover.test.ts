// Mid-stream failover (issue 18; Dynamo's request migration): the worker streaming a request is
// killed (-9) after the client has seen its first tokens; the router continues each unfinished
// choice on another worker from the tokens already sent, and the client's stream goes on to the
// end with exactly the text of an uninterrupted greedy run. Both layouts, real processes: 2 unified
// workers; 2 decode workers + 1 prefill worker (the continuation is prefilled remotely).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RouterApp } from '@tandem/router';
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
const extras = (body: Record<string, unknown>) => body as Record<string, never>;

interface RoutingRecord {
  decisions: { workerId: string | null; reason: string; prefill: { type: string } | null }[];
}

async function routingOf(router: RouterApp, requestId: string): Promise<RoutingRecord> {
  return (await (await fetch(`${router.url}/debug/routing/${requestId}`)).json()) as RoutingRecord;
}

/**
 * Streams a long greedy completion, kills the worker serving it once text has arrived, and returns
 * the text the client saw (and the killed worker).
 */
async function streamThroughAKill(
  router: RouterApp,
  workers: WorkerProcess[],
  requestId: string,
  body: { prompt: string; max_tokens: number; n?: number },
): Promise<{ texts: string[]; killed: WorkerProcess; finishReasons: (string | null)[] }> {
  const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const stream = await client.completions.create(
    { model, ...body, temperature: 0, stream: true, ...extras({ ignore_eos: true }) },
    { headers: { 'x-request-id': requestId } },
  );
  const n = body.n ?? 1;
  const texts = Array.from({ length: n }, () => '');
  const finishReasons: (string | null)[] = Array.from({ length: n }, () => null);
  let killed: WorkerProcess | null = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      texts[choice.index] += choice.text;
      if (choice.finish_reason !== null) finishReasons[choice.index] = choice.finish_reason;
    }
    if (killed === null && texts.every((text) => text.length > 0)) {
      // The worker of the last decision streams (earlier ones may have failed fast).
      const record = await routingOf(router, requestId);
      const workerId = record.decisions.at(-1)!.workerId;
      killed = workers.find((worker) => worker.workerId === workerId)!;
      assert.ok(killed !== undefined, `worker ${workerId} serves the stream`);
      killed.child.kill('SIGKILL');
    }
  }
  assert.ok(killed !== null, 'the stream produced text');
  return { texts, killed, finishReasons };
}

async function greedyText(router: RouterApp, prompt: string, maxTokens: number, n = 1): Promise<string[]> {
  const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const completion = await client.completions.create({
    model,
    prompt,
    max_tokens: maxTokens,
    temperature: 0,
    n,
    ...extras({ ignore_eos: true }),
  });
  return completion.choices.map((choice) => choice.text);
}

function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.split(' ').at(-1));
  return sum;
}

describe('a worker killed mid-stream: the stream continues on another worker', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  let started: WorkerProcess[] = [];
  let router: RouterApp | null = null;

  before(async () => {
    backplane = await startBackplane();
  });

  /** Each layout's cluster goes away before the next starts (one model: they would mix). */
  const stopCluster = async () => {
    await router?.close();
    router = null;
    await Promise.all(started.map((worker) => worker.stop()));
    started = [];
  };

  after(async () => {
    await stopCluster();
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  const start = async (workerId: string, role: 'unified' | 'decode' | 'prefill') => {
    const worker = await startWorker({
      modelDir,
      workerId,
      natsUrl: backplane.nats.url,
      redisUrl: backplane.redis.url,
      extraArgs: ['--role', role],
    });
    started.push(worker);
    return worker;
  };

  test('unified layout: the text equals an uninterrupted greedy run', async () => {
    const workers = await Promise.all([start('fo-u0', 'unified'), start('fo-u1', 'unified')]);
    router = await startRouter(modelDir, backplane, { policy: 'round_robin' });
    await waitForWorkers(router, 2);
    const prompt = 'Once upon a time, in a cluster far away,';
    const maxTokens = 1500;
    const [expected] = await greedyText(router, prompt, maxTokens);
    const { texts, killed, finishReasons } = await streamThroughAKill(router, workers, 'fo-unified-1', {
      prompt,
      max_tokens: maxTokens,
    });
    assert.equal(finishReasons[0], 'length');
    assert.equal(texts[0], expected, 'the client saw the uninterrupted text');
    const record = await routingOf(router, 'fo-unified-1');
    const failover = record.decisions.find((d) => d.reason === 'failover');
    assert.ok(failover !== undefined, 'a failover decision was made');
    assert.notEqual(failover.workerId, killed.workerId, 'the continuation ran on the other worker');
    const metrics = await (await fetch(`${router.url}/metrics`)).text();
    assert.equal(metric(metrics, 'tandem_router_failovers_total{'), 1);

    // Two choices (n = 2) continue at once, each from its own tokens.
    const survivor = workers.find((w) => w !== killed)!;
    const replacement = await start('fo-u2', 'unified');
    await waitFor('the replacement worker', () => router!.registry.get('fo-u2') !== null, 15_000);
    const expectedPair = await greedyText(router, prompt, 800, 2);
    const pair = await streamThroughAKill(router, [survivor, replacement], 'fo-unified-2', {
      prompt,
      max_tokens: 800,
      n: 2,
    });
    assert.deepEqual(pair.texts, expectedPair);
    await stopCluster();
  });

  test('disaggregated layout (2 decode + 1 prefill): the text equals an uninterrupted greedy run', async () => {
    const decodes = await Promise.all([start('fo-d0', 'decode'), start('fo-d1', 'decode')]);
    await start('fo-p0', 'prefill');
    router = await startRouter(modelDir, backplane, { policy: 'round_robin', disaggThreshold: 0 });
    await waitForWorkers(router, 2);
    await waitFor('the prefill worker', () => router!.registry.prefillWorkers().length === 1, 15_000);
    const prompt = 'The prefill worker computes the prompt; the decode worker writes';
    const maxTokens = 1500;
    const [expected] = await greedyText(router, prompt, maxTokens);
    const { texts, killed } = await streamThroughAKill(router, decodes, 'fo-pd-1', {
      prompt,
      max_tokens: maxTokens,
    });
    assert.equal(texts[0], expected, 'the client saw the uninterrupted text');
    const record = await routingOf(router, 'fo-pd-1');
    const failover = record.decisions.find((d) => d.reason === 'failover');
    assert.ok(failover !== undefined, 'a failover decision was made');
    assert.notEqual(failover.workerId, killed.workerId);
    assert.equal(failover.prefill?.type, 'remote', 'the continuation was prefilled by the prefill worker');
    await stopCluster();
  });
});
