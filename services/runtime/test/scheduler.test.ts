// The scheduler and engine loop against the shadow executor (shadow-executor.ts), which fails or
// diverges whenever a page table points at the wrong KV: outputs must equal the reference
// generation under every scheduling configuration.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Engine, type SchedulerOptions } from '../src/engine.ts';
import { collect, randomTokens, request, seededRandom } from './helpers.ts';
import {
  ShadowExecutor,
  shadowEosTokenId,
  shadowGenerate,
  shadowNextToken,
  shadowVocabSize,
} from './shadow-executor.ts';

function engine(numPages: number, scheduler: Partial<SchedulerOptions> = {}, pageSize = 4): Engine {
  const executor = new ShadowExecutor({ numPages, pageSize });
  return new Engine(executor, {
    maxBatchTokens: 256,
    maxRunningSequences: 64,
    maxPrefillChunkTokens: 64,
    enablePrefixCache: true,
    queuePolicy: 'fcfs',
    decodeReserveTokens: 4,
    ...scheduler,
  });
}

function assertDrained(e: Engine): void {
  e.checkInvariants();
  const load = e.load();
  assert.equal(load.numRunning, 0);
  assert.equal(load.numWaiting, 0);
  assert.equal(load.numFreePages + load.numEvictablePages, load.numTotalPages);
}

const configs: [string, number, Partial<SchedulerOptions>][] = [
  ['defaults', 256, {}],
  ['prefix cache off', 256, { enablePrefixCache: false }],
  ['chunk 1', 256, { maxPrefillChunkTokens: 1 }],
  ['chunk 7', 256, { maxPrefillChunkTokens: 7 }],
  ['chunk 64', 256, { maxPrefillChunkTokens: 64 }],
  ['budget 5 tokens per step', 256, { maxBatchTokens: 5 }],
  ['longest prefix first', 256, { queuePolicy: 'longest-prefix' }],
  ['tiny pool (eviction, preemption)', 24, {}],
  ['tiny pool, cache off', 24, { enablePrefixCache: false, maxPrefillChunkTokens: 7 }],
];

describe('scheduler against the shadow executor', () => {
  for (const [name, numPages, options] of configs) {
    test(`concurrent requests give the reference outputs: ${name}`, async () => {
      const e = engine(numPages, options);
      const random = seededRandom(7);
      const shared = randomTokens(random, 13, shadowVocabSize);
      const prompts = Array.from({ length: 12 }, (_, i) =>
        i % 3 === 0
          ? randomTokens(random, 1 + i * 3, shadowVocabSize)
          : [...shared, ...randomTokens(random, i, shadowVocabSize)],
      );
      const results = await Promise.all(
        prompts.map((prompt, i) => collect(e.generate(request(`r${i}`, prompt, 5 + (i % 4) * 6)))),
      );
      results.forEach((choices, i) => {
        assert.deepEqual(choices[0]!.tokenIds, shadowGenerate(prompts[i]!, 5 + (i % 4) * 6), `request ${i}`);
        assert.equal(choices[0]!.finishReason, 'length');
      });
      if (numPages === 24) assert.ok(e.stats().numPreemptions > 0, 'the tiny pool preempted');
      assertDrained(e);
      await e.close();
    });
  }

  test('concurrent duplicates and cached decode pages keep every locked path equal to its prefix', async () => {
    const e = engine(512, { maxPrefillChunkTokens: 5, maxBatchTokens: 12 });
    const prompt = randomTokens(seededRandom(21), 18, shadowVocabSize);
    const run = (id: string, tokens: number[], maxTokens: number) =>
      collect(e.generate(request(id, tokens, maxTokens)));
    // Check the bookkeeping after every step while identical prompts race.
    const checks = setInterval(() => e.checkInvariants(), 0);
    const [a, b, c] = await Promise.all([
      run('a', prompt, 30),
      run('b', prompt, 30),
      run('c', prompt.slice(0, 9), 30),
    ]);
    const expected = shadowGenerate(prompt, 30);
    assert.deepEqual(a[0]!.tokenIds, expected);
    assert.deepEqual(b[0]!.tokenIds, expected);
    assert.deepEqual(c[0]!.tokenIds, shadowGenerate(prompt.slice(0, 9), 30));
    // A continuation of a's output reuses its cached decode pages.
    const continued = [...prompt, ...expected.slice(0, 20)];
    const d = await run('d', continued, 10);
    assert.deepEqual(d[0]!.tokenIds, shadowGenerate(continued, 10));
    assert.equal(d[0]!.numCachedTokens, 36);
    clearInterval(checks);
    assertDrained(e);
    await e.close();
  });

  test('a second request sharing a prefix computes only its suffix and reports the cached tokens', async () => {
    const e = engine(256, {}, 16);
    const random = seededRandom(3);
    const prefix = randomTokens(random, 200, shadowVocabSize);
    const first = await collect(e.generate(request('a', [...prefix, 7, 8, 9], 4)));
    assert.equal(first[0]!.numCachedTokens, 0);
    const before = e.stats().numForwardTokens;
    const prompt = [...prefix, 11, 12];
    const second = await collect(e.generate(request('b', prompt, 4)));
    assert.deepEqual(second[0]!.tokenIds, shadowGenerate(prompt, 4));
    assert.equal(second[0]!.numCachedTokens, 192); // 12 full pages of 16
    assert.equal(e.stats().numForwardTokens - before, prompt.length - 192 + 3);
    assertDrained(e);
    await e.close();
  });

  test('n > 1 shares the prompt pages; seeded choices differ and are reproducible', async () => {
    for (const enablePrefixCache of [true, false]) {
      const e = engine(256, { enablePrefixCache });
      const prompt = randomTokens(seededRandom(5), 30, shadowVocabSize);
      const sampling = { ...request('x', [], 1).sampling, temperature: 1, seed: 100 };
      const choices = await collect(e.generate(request('n3', prompt, 6, { n: 3, sampling })));
      assert.equal(choices.length, 3);
      for (const [i, choice] of choices.entries()) {
        assert.deepEqual(choice.tokenIds, shadowGenerate(prompt, 6, 100 + i));
      }
      // Choice 0 computes the prompt; the others only the last partial page (28 shared tokens).
      assert.equal(e.stats().numForwardTokens, 30 + 2 * 2 + 3 * 5);
      assertDrained(e);
      await e.close();
    }
  });

  test('stops: EOS unless ignoreEos, stop ids, min tokens, max tokens', async () => {
    const e = engine(256);
    // Find a prompt whose greedy continuation hits EOS at step 3.
    const random = seededRandom(11);
    let prompt: number[] = [];
    for (;;) {
      prompt = randomTokens(random, 6, shadowVocabSize);
      const out = shadowGenerate(prompt, 3);
      if (out[2] === shadowEosTokenId && !out.slice(0, 2).includes(shadowEosTokenId)) break;
    }
    const out = shadowGenerate(prompt, 12);
    const eos = await collect(e.generate(request('eos', prompt, 12, { ignoreEos: false })));
    assert.deepEqual(eos[0]!.tokenIds, out.slice(0, 3));
    assert.equal(eos[0]!.finishReason, 'stop');
    assert.equal(eos[0]!.matchedStopTokenId, null);
    const ignored = await collect(e.generate(request('ign', prompt, 12, { ignoreEos: true })));
    assert.deepEqual(ignored[0]!.tokenIds, out);
    assert.equal(ignored[0]!.finishReason, 'length');
    const minTokens = await collect(
      e.generate(request('min', prompt, 12, { ignoreEos: false, minTokens: 4 })),
    );
    const nextEos = out.indexOf(shadowEosTokenId, 4);
    assert.deepEqual(minTokens[0]!.tokenIds, nextEos === -1 ? out : out.slice(0, nextEos + 1));
    const stopId = out[1]!;
    const stop = await collect(e.generate(request('stop', prompt, 12, { stopTokenIds: [stopId] })));
    assert.deepEqual(stop[0]!.tokenIds, out.slice(0, out.indexOf(stopId) + 1));
    assert.equal(stop[0]!.finishReason, 'stop');
    assert.equal(stop[0]!.matchedStopTokenId, stopId);
    assertDrained(e);
    await e.close();
  });

  test('100 randomized requests with random cancellations leave no page referenced', async () => {
    const e = engine(40, { maxPrefillChunkTokens: 9, decodeReserveTokens: 2 });
    const random = seededRandom(42);
    const shared = randomTokens(random, 20, shadowVocabSize);
    const runs: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) {
      const prompt =
        random() < 0.5
          ? [
              ...shared.slice(0, 4 + Math.floor(random() * 16)),
              ...randomTokens(random, 1 + Math.floor(random() * 20), shadowVocabSize),
            ]
          : randomTokens(random, 1 + Math.floor(random() * 40), shadowVocabSize);
      const maxTokens = 1 + Math.floor(random() * 30);
      const controller = new AbortController();
      const cancelAfterMs = random() < 0.4 ? Math.floor(random() * 20) : null;
      const n = random() < 0.15 ? 2 : 1;
      const stream = e.generate(request(`q${i}`, prompt, maxTokens, { n }), controller.signal);
      if (cancelAfterMs !== null) setTimeout(() => controller.abort(), cancelAfterMs);
      runs.push(
        collect(stream).then((choices) => {
          for (const choice of choices) {
            const expected = shadowGenerate(prompt, maxTokens);
            if (choice.finishReason === 'abort') {
              assert.deepEqual(choice.tokenIds, expected.slice(0, choice.tokenIds.length));
            } else if (n === 1) {
              assert.deepEqual(choice.tokenIds, expected);
            }
          }
        }),
      );
      if (random() < 0.3) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(runs);
    assertDrained(e);
    await e.close();
  });

  test('an early break out of the stream aborts the request and frees its pages', async () => {
    const e = engine(64);
    const prompt = randomTokens(seededRandom(9), 10, shadowVocabSize);
    let numSeen = 0;
    for await (const chunk of e.generate(request('brk', prompt, 100))) {
      numSeen += chunk.tokenIds.length;
      if (numSeen >= 3) break;
    }
    assert.ok(!e.abort('brk'), 'the request is gone');
    assertDrained(e);
    await e.close();
  });

  test('an executor failure fails the live requests with ExecutorFailedError; the engine keeps serving', async () => {
    let failNext = false;
    class FlakyExecutor extends ShadowExecutor {
      override async forward(batch: Parameters<ShadowExecutor['forward']>[0]) {
        if (failNext) {
          failNext = false;
          throw new Error('device lost');
        }
        return super.forward(batch);
      }
    }
    const e = new Engine(new FlakyExecutor({ numPages: 64, pageSize: 4 }), {
      maxBatchTokens: 64,
      maxRunningSequences: 8,
      maxPrefillChunkTokens: 64,
      enablePrefixCache: true,
      queuePolicy: 'fcfs',
      decodeReserveTokens: 4,
    });
    const prompt = randomTokens(seededRandom(13), 9, shadowVocabSize);
    failNext = true;
    await assert.rejects(collect(e.generate(request('fails', prompt, 5))), (error: Error) => {
      assert.equal(error.name, 'ExecutorFailedError');
      assert.equal((error.cause as Error).message, 'device lost');
      return true;
    });
    const after = await collect(e.generate(request('works', prompt, 5)));
    assert.deepEqual(after[0]!.tokenIds, shadowGenerate(prompt, 5));
    assertDrained(e);
    await e.close();
    assert.throws(() => e.generate(request('closed', prompt, 5)), { name: 'EngineClosedError' });
  });

  test('a slow consumer gets merged chunks with aligned logprobs', async () => {
    const e = engine(64);
    const prompt = randomTokens(seededRandom(14), 6, shadowVocabSize);
    const stream = e.generate(request('slow', prompt, 12, { logprobs: true }));
    while (e.load().numRunning + e.load().numWaiting > 0)
      await new Promise((resolve) => setTimeout(resolve, 1));
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.length < 12, `${chunks.length} chunks for 12 tokens`);
    const tokenIds = chunks.flatMap((c) => c.tokenIds);
    assert.deepEqual(tokenIds, shadowGenerate(prompt, 12));
    const logprobs = chunks.flatMap((c) => c.logprobs!);
    // The shadow executor's logprob is -(position + 1) / 1000.
    assert.deepEqual(
      logprobs,
      tokenIds.map((_, k) => -(prompt.length + k) / 1000),
    );
    assert.equal(chunks.at(-1)!.finishReason, 'length');
    await e.close();
  });

  test('close() fails live requests with EngineClosedError and frees the engine', async () => {
    const e = engine(64);
    const prompt = randomTokens(seededRandom(15), 6, shadowVocabSize);
    const iterator = e.generate(request('long', prompt, 200))[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).done, false); // running
    await e.close();
    await assert.rejects(
      async () => {
        for (;;) if ((await iterator.next()).done) break;
      },
      { name: 'EngineClosedError' },
    );
    await e.close(); // idempotent
  });

  test('invalid requests throw before queueing', async () => {
    const e = engine(8);
    assert.throws(() => e.generate(request('empty', [], 4)), { name: 'InvalidGenerateRequestError' });
    assert.throws(() => e.generate(request('big', new Array(40).fill(3), 4)), {
      name: 'RequestTooLongError',
    });
    assert.throws(() => e.generate(request('vocab', [shadowVocabSize], 4)), {
      name: 'InvalidGenerateRequestError',
    });
    assert.throws(() => e.generate(request('zero', [3], 0)), { name: 'InvalidGenerateRequestError' });
    const stream = e.generate(request('dup', [3, 4], 2));
    assert.throws(() => e.generate(request('dup', [3, 4], 2)), { name: 'DuplicateRequestError' });
    await collect(stream);
    assert.equal(shadowNextToken([3, 4]) >= 0, true);
    await e.close();
  });
});
