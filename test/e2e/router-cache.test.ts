// cache_aware routing on real KV state: 3 unified worker processes, NATS, Redis, routers over
// HTTP, the official openai client. Prompts are token ids so prefixes are exact page multiples.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { seededRandom } from '@tandem/common';
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
const vocabSize = 512;

function randomTokens(random: () => number, length: number): number[] {
  return Array.from({ length }, () => 3 + Math.floor(random() * (vocabSize - 3)));
}

interface Outcome {
  workerId: string;
  numPromptTokens: number;
  numCachedTokens: number;
}

let requestCounter = 0;

async function complete(router: RouterApp, prompt: number[]): Promise<Outcome> {
  const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const requestId = `cache-${process.pid}-${++requestCounter}`;
  const completion = await client.completions.create(
    { model, prompt, max_tokens: 2, temperature: 0 },
    { headers: { 'x-request-id': requestId } },
  );
  const record = (await (await fetch(`${router.url}/debug/routing/${requestId}`)).json()) as {
    decisions: { workerId: string }[];
  };
  return {
    workerId: record.decisions.at(-1)!.workerId,
    numPromptTokens: completion.usage!.prompt_tokens,
    numCachedTokens: completion.usage!.prompt_tokens_details?.cached_tokens ?? 0,
  };
}

/** Runs `prompts` with at most `concurrency` in flight. */
async function runAll(
  router: RouterApp | ((i: number) => RouterApp),
  prompts: number[][],
  concurrency: number,
) {
  const outcomes: Outcome[] = new Array(prompts.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < prompts.length) {
        const i = next++;
        const target = typeof router === 'function' ? router(i) : router;
        outcomes[i] = await complete(target, prompts[i]!);
      }
    }),
  );
  return outcomes;
}

function countsByWorker(outcomes: readonly Outcome[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const outcome of outcomes) counts.set(outcome.workerId, (counts.get(outcome.workerId) ?? 0) + 1);
  return counts;
}

function hitRate(outcomes: readonly Outcome[]): number {
  const prompt = outcomes.reduce((sum, o) => sum + o.numPromptTokens, 0);
  const cached = outcomes.reduce((sum, o) => sum + o.numCachedTokens, 0);
  return cached / prompt;
}

describe('cache_aware routing', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  const workers = new Map<string, WorkerProcess>();
  const routers: RouterApp[] = [];
  let router: RouterApp;

  const addWorker = async (workerId: string): Promise<void> => {
    const worker = await startWorker({
      modelDir,
      workerId,
      natsUrl: backplane.nats.url,
      redisUrl: backplane.redis.url,
    });
    workers.set(workerId, worker);
  };

  before(async () => {
    backplane = await startBackplane();
    await Promise.all([addWorker('cache-a'), addWorker('cache-b'), addWorker('cache-d')]);
    router = await startRouter(modelDir, backplane, { replicaId: 'replica-1' });
    routers.push(router);
    await waitForWorkers(router, 3);
  });

  after(async () => {
    await Promise.all(routers.map((r) => r.close()));
    await Promise.all([...workers.values()].map((worker) => worker.stop()));
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  test('a repeated prefix goes to the worker holding it and reports cached tokens', async () => {
    const random = seededRandom(1);
    const owners = new Set<string>();
    for (let p = 0; p < 6; p++) {
      const prefix = randomTokens(random, 160);
      const first = await complete(router, [...prefix, ...randomTokens(random, 8)]);
      assert.equal(first.numCachedTokens, 0);
      owners.add(first.workerId);
      for (let r = 0; r < 3; r++) {
        const again = await complete(router, [...prefix, ...randomTokens(random, 8)]);
        assert.equal(again.workerId, first.workerId, `prefix ${p} request ${r} left its worker`);
        assert.equal(again.numCachedTokens, 160, `prefix ${p} request ${r}`);
      }
    }
    // Different prefixes do not all pile onto one worker.
    assert.ok(owners.size >= 2, `6 prefixes went to ${owners.size} worker(s)`);
  });

  test('a burst of one new prefix lands on one worker (optimistic index entries)', async () => {
    const random = seededRandom(2);
    const prefix = randomTokens(random, 160);
    const outcomes = await Promise.all(
      Array.from({ length: 3 }, () => complete(router, [...prefix, ...randomTokens(random, 8)])),
    );
    assert.equal(new Set(outcomes.map((o) => o.workerId)).size, 1);
  });

  test('unrelated traffic spreads: no worker above 1.5x the mean', async () => {
    const random = seededRandom(3);
    const prompts = Array.from({ length: 60 }, () => randomTokens(random, 40 + Math.floor(random() * 80)));
    const outcomes = await runAll(router, prompts, 4);
    const counts = countsByWorker(outcomes);
    const mean = prompts.length / workers.size;
    assert.equal(counts.size, workers.size);
    for (const [workerId, count] of counts)
      assert.ok(count <= 1.5 * mean, `${workerId} got ${count} of ${prompts.length}`);
  });

  test('two router replicas give the same hit rate as one (within 5 points); a late replica loads dumps', async () => {
    // The same shape (which prefix each request uses) with fresh token contents per run, so
    // the second run finds nothing cached from the first.
    const workload = (seed: number): number[][] => {
      const shape = seededRandom(7);
      const random = seededRandom(seed);
      const prefixes = Array.from({ length: 8 }, () => randomTokens(random, 96));
      return Array.from({ length: 96 }, () => [
        ...prefixes[Math.floor(shape() * prefixes.length)]!,
        ...randomTokens(random, 16),
      ]);
    };
    const single = hitRate(await runAll(router, workload(10), 2));
    const second = await startRouter(modelDir, backplane, { replicaId: 'replica-2' });
    routers.push(second);
    await waitForWorkers(second, 3);
    // The late replica rebuilt the index from the workers' dumps.
    await waitFor(
      'replica 2 to catch up',
      () => second.index.numBlocks === router.index.numBlocks && router.index.numBlocks > 0,
    );
    const pairOutcomes = await runAll((i) => (i % 2 === 0 ? router : second), workload(11), 2);
    const pair = hitRate(pairOutcomes);
    assert.ok(single > 0.4, `single-replica hit rate ${single}`);
    assert.ok(Math.abs(single - pair) <= 0.05, `one replica ${single.toFixed(3)} vs two ${pair.toFixed(3)}`);
    await second.close();
    routers.pop();
  });

  test('recovers when a worker leaves and when one joins', async () => {
    const random = seededRandom(4);
    const prefix = randomTokens(random, 160);
    const first = await complete(router, [...prefix, ...randomTokens(random, 8)]);
    const leaving = workers.get(first.workerId)!;
    await leaving.stop();
    workers.delete(first.workerId);
    await waitFor('the router to drop the worker', () => router.registry.get(first.workerId) === null);
    assert.equal(router.index.hasWorker(first.workerId), false);
    const after = await complete(router, [...prefix, ...randomTokens(random, 8)]);
    assert.notEqual(after.workerId, first.workerId);
    assert.equal(after.numCachedTokens, 0);

    await addWorker('cache-c');
    await waitForWorkers(router, 3);
    const prompts = Array.from({ length: 21 }, () => randomTokens(random, 64));
    const counts = countsByWorker(await runAll(router, prompts, 3));
    assert.ok((counts.get('cache-c') ?? 0) >= 4, `the new worker got ${counts.get('cache-c') ?? 0} of 21`);
  });

  test('a worker killed without a word: requests retry on another worker before the first token', async () => {
    const random = seededRandom(5);
    const victimId = [...workers.keys()][0]!;
    const victim = workers.get(victimId)!;
    victim.child.kill('SIGKILL');
    await new Promise((resolve) => victim.child.once('exit', resolve));
    workers.delete(victimId);
    // The router still lists it (its lease has not expired): routing to it fails and is retried.
    assert.notEqual(router.registry.get(victimId), null);
    const outcomes = await runAll(
      router,
      Array.from({ length: 6 }, () => randomTokens(random, 32)),
      2,
    );
    for (const outcome of outcomes) assert.notEqual(outcome.workerId, victimId);
  });
});
