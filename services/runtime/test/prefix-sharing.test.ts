// In-batch prefix sharing and the load report's queued prefill tokens, on the real executor
// (tiny-qwen2, 8-token pages so a 200-token prefix is exactly 25 full pages).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fixture } from '@tandem/common/testing';
import { Executor } from '@tandem/executor';
import { defaultSchedulerOptions, Engine, type SchedulerOptions } from '../src/engine.ts';
import { KvEventLog } from '../src/kv-events.ts';
import { Scheduler } from '../src/scheduler.ts';
import { collect, randomTokens, request, seededRandom } from './helpers.ts';

const f = fixture('tiny-qwen2');
const pageSize = 8;

function openExecutor(numPages: number): Promise<Executor> {
  return Executor.open({ modelDir: f.dir, pageSize, numPages, numThreads: 2 });
}

async function openEngine(scheduler: Partial<SchedulerOptions> = {}): Promise<Engine> {
  return Engine.create({ executor: await openExecutor(256), scheduler });
}

/** A scheduler driven step by step by hand, computing on the real executor. */
function openScheduler(executor: Executor, options: Partial<SchedulerOptions> = {}): Scheduler {
  return new Scheduler(
    { ...defaultSchedulerOptions, ...options },
    {
      numPages: executor.kvLayout.numPages,
      pageSize,
      eosTokenIds: executor.info.eosTokenIds,
      vocabSize: executor.info.vocabSize,
      maxModelLen: executor.info.maxPositionEmbeddings,
    },
    new KvEventLog(),
  );
}

async function step(scheduler: Scheduler, executor: Executor): Promise<string[]> {
  const batch = scheduler.schedule();
  if (batch === null) return [];
  scheduler.postprocess(batch, await executor.forward(batch.inputs));
  return batch.items.map((item) => item.seq.state.request.requestId);
}

const random = seededRandom(41);
const prefix = randomTokens(random, 200, 500);
const promptA = [...prefix, ...randomTokens(random, 13, 500)];
const promptB = [...prefix, ...randomTokens(random, 9, 500)];
const unrelated = randomTokens(random, 50, 500);
const maxTokens = 6;

/** Sequential reference: a then b on one engine (b reuses a's cached prefix). */
async function sequentialOutputs(maxPrefillChunkTokens: number): Promise<[number[], number[]]> {
  const sequential = await openEngine({ maxPrefillChunkTokens });
  const a = await collect(sequential.generate(request('a', promptA, maxTokens)));
  const b = await collect(sequential.generate(request('b', promptB, maxTokens)));
  await sequential.close();
  return [a[0]!.tokenIds, b[0]!.tokenIds];
}

describe('in-batch prefix sharing', () => {
  for (const maxPrefillChunkTokens of [512, 48]) {
    test(`two requests queued in the same step compute a shared 200-token prefix once (chunk ${maxPrefillChunkTokens})`, async () => {
      const expected = await sequentialOutputs(maxPrefillChunkTokens);
      const executor = await openExecutor(256);
      const scheduler = openScheduler(executor, { maxPrefillChunkTokens });
      const outputs = new Map<string, number[]>();
      for (const [id, prompt] of [
        ['a', promptA],
        ['b', promptB],
      ] as const) {
        const tokenIds: number[] = [];
        outputs.set(id, tokenIds);
        scheduler.addRequest(
          request(id, prompt, maxTokens),
          (chunk) => tokenIds.push(...chunk.tokenIds),
          () => {},
        );
      }
      while (scheduler.hasWork) await step(scheduler, executor);
      assert.deepEqual(outputs.get('a'), expected[0]);
      assert.deepEqual(outputs.get('b'), expected[1]);
      assert.equal(scheduler.counters.numCachedPromptTokens, 200);
      // The prefix once, both suffixes, then one token per decode step after each first sample.
      const numSuffixTokens = promptA.length - 200 + promptB.length - 200;
      assert.equal(executor.stats.forwardTokens, 200 + numSuffixTokens + 2 * (maxTokens - 1));
      scheduler.checkInvariants();
      await executor.close();
    });
  }

  for (const maxPrefillChunkTokens of [48, 16]) {
    test(`two concurrent engine requests compute a shared 200-token prefix once (chunk ${maxPrefillChunkTokens})`, async () => {
      const [expectedA, expectedB] = await sequentialOutputs(maxPrefillChunkTokens);
      const engine = await openEngine({ maxPrefillChunkTokens });
      const [a, b] = await Promise.all([
        collect(engine.generate(request('a', promptA, maxTokens))),
        collect(engine.generate(request('b', promptB, maxTokens))),
      ]);
      assert.deepEqual(a[0]!.tokenIds, expectedA);
      assert.deepEqual(b[0]!.tokenIds, expectedB);
      assert.equal(a[0]!.numCachedTokens, 0);
      assert.equal(b[0]!.numCachedTokens, 200);
      // The prefix once, both suffixes, then one token per decode step after each first sample.
      const numSuffixTokens = promptA.length - 200 + promptB.length - 200;
      assert.equal(engine.stats().numForwardTokens, 200 + numSuffixTokens + 2 * (maxTokens - 1));
      engine.checkInvariants();
      await engine.close();
    });
  }

  test('a held request does not block an unrelated one behind it', async () => {
    const executor = await openExecutor(128);
    const scheduler = openScheduler(executor, { maxPrefillChunkTokens: 64 });
    const noop = (): void => {};
    scheduler.addRequest(request('a', promptA, maxTokens), noop, noop);
    scheduler.addRequest(request('b', promptB, maxTokens), noop, noop);
    scheduler.addRequest(request('c', unrelated, maxTokens), noop, noop);
    // a computes the prefix in 64-token chunks; b waits for it, c runs at once.
    assert.deepEqual(await step(scheduler, executor), ['a', 'c']);
    assert.deepEqual(await step(scheduler, executor), ['a', 'c']);
    assert.deepEqual(await step(scheduler, executor), ['a', 'c']);
    // a has computed 192 tokens (24 pages) and needs one more page of the prefix.
    assert.deepEqual(await step(scheduler, executor), ['a', 'c']);
    // The prefix is cached now: b is admitted and computes only its suffix.
    const batch = scheduler.schedule();
    assert.ok(batch !== null);
    const itemB = batch.items.find((item) => item.seq.state.request.requestId === 'b');
    assert.ok(itemB !== undefined, 'b admitted once the prefix is cached');
    assert.equal(itemB.startPos, 200);
    scheduler.postprocess(batch, await executor.forward(batch.inputs));
    while (scheduler.hasWork) await step(scheduler, executor);
    scheduler.checkInvariants();
    await executor.close();
  });

  test('a request held behind an aborted one is admitted at the next step', async () => {
    const executor = await openExecutor(128);
    const scheduler = openScheduler(executor, { maxPrefillChunkTokens: 64 });
    const noop = (): void => {};
    scheduler.addRequest(request('a', promptA, maxTokens), noop, noop);
    scheduler.addRequest(request('b', promptB, maxTokens), noop, noop);
    assert.deepEqual(await step(scheduler, executor), ['a']);
    scheduler.abort('a');
    // b matches a's first 64 tokens (8 pages cached on abort) and computes the rest itself.
    const batch = scheduler.schedule();
    assert.ok(batch !== null);
    assert.deepEqual(
      batch.items.map((item) => [item.seq.state.request.requestId, item.startPos]),
      [['b', 64]],
    );
    scheduler.postprocess(batch, await executor.forward(batch.inputs));
    while (scheduler.hasWork) await step(scheduler, executor);
    scheduler.checkInvariants();
    await executor.close();
  });

  test('a different cache namespace is not held', async () => {
    const executor = await openExecutor(128);
    const scheduler = openScheduler(executor, { maxPrefillChunkTokens: 64 });
    const noop = (): void => {};
    scheduler.addRequest(request('a', promptA, maxTokens), noop, noop);
    scheduler.addRequest(request('b', promptB, maxTokens, { cacheNamespace: 'other' }), noop, noop);
    assert.deepEqual(await step(scheduler, executor), ['a', 'b']);
    while (scheduler.hasWork) await step(scheduler, executor);
    scheduler.checkInvariants();
    await executor.close();
  });
});

describe('load report', () => {
  test('numQueuedPrefillTokens counts only what waiting prompts would compute', async () => {
    const executor = await openExecutor(128);
    const scheduler = openScheduler(executor, { maxRunningSequences: 1 });
    const noop = (): void => {};
    scheduler.addRequest(request('a', promptA, 1), noop, noop);
    assert.equal(scheduler.load().numQueuedPrefillTokens, promptA.length); // nothing cached yet
    while (scheduler.hasWork) await step(scheduler, executor);
    // a's prompt is cached (25 full prefix pages and its own full pages).
    scheduler.addRequest(request('b', promptB, 1), noop, noop);
    scheduler.addRequest(request('c', unrelated, 1), noop, noop);
    const load = scheduler.load();
    assert.equal(load.numWaiting, 2);
    assert.equal(load.numQueuedPrefillTokens, promptB.length - 200 + unrelated.length);
    while (scheduler.hasWork) await step(scheduler, executor);
    scheduler.checkInvariants();
    await executor.close();
  });
});
