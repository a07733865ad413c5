// tokenizer -> engine (real executor, CPU) -> detokenizer against every fixture's golden text,
// under every scheduling configuration, plus prefix reuse and randomized cancellation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allFixtures, type Fixture, fixture } from '@tandem/common/testing';
import { defaultSampling, Executor } from '@tandem/executor';
import { IncrementalDetokenizer, TextTokenizer } from '@tandem/tokenizer';
import { Engine, type GenerateRequest, type SchedulerOptions } from '../src/engine.ts';
import { collect, randomTokens, request, seededRandom } from './helpers.ts';

interface GoldenCase {
  label: string;
  promptTokenIds: number[];
  greedyIds: number[];
  greedyText: string;
}

async function goldenCases(f: Fixture, tokenizer: TextTokenizer): Promise<GoldenCase[]> {
  const cases: GoldenCase[] = [];
  f.golden.text_cases.forEach((c, i) => {
    const promptTokenIds = tokenizer.encode(c.prompt);
    cases.push({ label: `text ${i}`, promptTokenIds, greedyIds: c.greedy_ids, greedyText: c.greedy_text });
  });
  (f.golden.chat_cases ?? []).forEach((c, i) => {
    const promptTokenIds = tokenizer.encode(
      tokenizer.applyChatTemplate(c.messages, { addGenerationPrompt: true }),
      {
        addSpecialTokens: false,
      },
    );
    cases.push({ label: `chat ${i}`, promptTokenIds, greedyIds: c.greedy_ids, greedyText: c.greedy_text });
  });
  return cases;
}

async function openEngine(
  f: Fixture,
  numPages: number,
  scheduler: Partial<SchedulerOptions> = {},
): Promise<Engine> {
  return Engine.create({ executor: { modelDir: f.dir, pageSize: 16, numPages, numThreads: 2 }, scheduler });
}

/** Runs every case concurrently; returns each case's streamed text and token ids. */
async function runCases(engine: Engine, tokenizer: TextTokenizer, cases: GoldenCase[]) {
  return Promise.all(
    cases.map(async (c, i) => {
      const detokenizer = new IncrementalDetokenizer(tokenizer);
      let text = '';
      const tokenIds: number[] = [];
      for await (const chunk of engine.generate(request(`case${i}`, c.promptTokenIds, c.greedyIds.length))) {
        tokenIds.push(...chunk.tokenIds);
        text += detokenizer.push(chunk.tokenIds);
        if (chunk.finishReason !== null) assert.equal(chunk.finishReason, 'length');
      }
      text += detokenizer.flush();
      return { text, tokenIds };
    }),
  );
}

/** Plain sequential greedy decoding on the executor alone: one sequence, no scheduler. */
async function executorGreedy(
  f: Fixture,
  promptTokenIds: number[],
  numTokens: number,
  sampling = defaultSampling(),
): Promise<number[]> {
  const executor = await Executor.open({ modelDir: f.dir, pageSize: 16, numPages: 64, numThreads: 2 });
  const tokens = [...promptTokenIds];
  const pageTable = Int32Array.from({ length: 64 }, (_, i) => i);
  let startPos = 0;
  while (tokens.length < promptTokenIds.length + numTokens) {
    const tokenIds = Int32Array.from(tokens.slice(startPos));
    const [output] = await executor.forward([
      {
        tokenIds,
        startPos,
        pageTable: pageTable.subarray(0, Math.ceil(tokens.length / 16)),
        sampleIndices: Int32Array.of(tokenIds.length - 1),
        sampling,
        promptTokenIds: Int32Array.from(promptTokenIds),
        outputTokenIds: Int32Array.from(tokens.slice(promptTokenIds.length)),
        targetIds: null,
        returnLogits: false,
        returnProbs: false,
      },
    ]);
    startPos = tokens.length;
    tokens.push(output!.samples[0]!.tokenId);
  }
  await executor.close();
  return tokens.slice(promptTokenIds.length);
}

describe('golden text through tokenizer -> engine -> detokenizer', () => {
  for (const f of allFixtures()) {
    test(`${f.name}: every text and chat case gives greedy_text (batched, chunked prefill)`, async () => {
      const tokenizer = await TextTokenizer.load(f.dir);
      const cases = await goldenCases(f, tokenizer);
      const engine = await openEngine(f, 256, { maxPrefillChunkTokens: 7 });
      const results = await runCases(engine, tokenizer, cases);
      for (const [i, c] of cases.entries()) {
        const result = results[i]!;
        const key = `${f.name} ${c.label}`;
        assert.deepEqual(result.tokenIds, c.greedyIds, key);
        assert.equal(result.text, c.greedyText, key);
      }
      engine.checkInvariants();
      await engine.close();
    });
  }

  const variants: [string, number, Partial<SchedulerOptions>][] = [
    ['prefix cache off', 256, { enablePrefixCache: false }],
    ['chunk 1', 256, { maxPrefillChunkTokens: 1 }],
    ['chunk 7', 256, { maxPrefillChunkTokens: 7 }],
    ['chunk 64', 256, { maxPrefillChunkTokens: 64 }],
    ['one sequence at a time', 256, { maxRunningSequences: 1 }],
    ['tiny pool: eviction and preemption', 7, { decodeReserveTokens: 0 }],
    [
      'tiny pool, cache off, chunk 7',
      7,
      { enablePrefixCache: false, maxPrefillChunkTokens: 7, decodeReserveTokens: 0 },
    ],
  ];
  for (const { name } of allFixtures()) {
    test(`${name}: identical outputs under every scheduling variant`, async () => {
      const f = fixture(name);
      const tokenizer = await TextTokenizer.load(f.dir);
      const cases = await goldenCases(f, tokenizer);
      // Twice each case: the second copy hits the prefix cache (or the first one's pages).
      const doubled = [...cases, ...cases];
      for (const [label, numPages, options] of variants) {
        const engine = await openEngine(f, numPages, options);
        const results = await runCases(engine, tokenizer, doubled);
        for (const [i, c] of doubled.entries())
          assert.equal(results[i]!.text, c.greedyText, `${label}: ${c.label}`);
        if (numPages === 7) assert.ok(engine.stats().numPreemptions > 0, `${label}: preempted`);
        if (numPages === 7 && options.enablePrefixCache !== false) {
          assert.ok(engine.stats().numEvictedPages > 0, `${label}: evicted`);
        }
        engine.checkInvariants();
        const load = engine.load();
        assert.equal(load.numFreePages + load.numEvictablePages, load.numTotalPages, label);
        await engine.close();
      }
    });
  }

  test('token-id cases (1 to 257 tokens): greedy ids, logprobs within 1e-4, top logprobs', async () => {
    for (const name of ['tiny-llama', 'tiny-qwen2']) {
      const f = fixture(name);
      const engine = await openEngine(f, 256, { maxPrefillChunkTokens: 64 });
      const sampling = { ...defaultSampling(), numTopLogprobs: 3 };
      const cases = f.golden.cases!;
      const results = await Promise.all(
        cases.map(async (c, i) => {
          const out = {
            tokenIds: [] as number[],
            logprobs: [] as number[],
            top: [] as { tokenId: number }[][],
          };
          const r = request(`c${i}`, c.prompt_ids, c.greedy_ids.length, { logprobs: true, sampling });
          for await (const chunk of engine.generate(r)) {
            out.tokenIds.push(...chunk.tokenIds);
            out.logprobs.push(...chunk.logprobs!);
            out.top.push(...chunk.topLogprobs!);
          }
          return out;
        }),
      );
      for (const [i, c] of cases.entries()) {
        const out = results[i]!;
        if (c.greedy_min_margin > 1e-3) assert.deepEqual(out.tokenIds, c.greedy_ids, `${name} case ${i}`);
        assert.equal(out.logprobs.length, c.greedy_ids.length);
        for (const [k, value] of out.logprobs.entries()) {
          if (out.tokenIds[k] !== c.greedy_ids[k]) break; // diverged on a near tie
          const expected = c.sequence_logprobs[c.prompt_ids.length - 1 + k]!;
          assert.ok(
            Math.abs(value - expected) < 1e-4,
            `${name} case ${i} step ${k}: ${value} vs ${expected}`,
          );
          assert.equal(out.top[k]!.length, 3);
          assert.equal(out.top[k]![0]!.tokenId, c.greedy_ids[k]);
        }
      }
      await engine.close();
    }
  });

  test('seeded sampling gives the same tokens alone, batched, and under preemption', async () => {
    const f = fixture('tiny-llama31');
    const random = seededRandom(8);
    const prompts = Array.from({ length: 6 }, (_, i) => randomTokens(random, 5 + i * 9, 500));
    const sampling = { ...defaultSampling(), temperature: 0.9, topP: 0.95, seed: 1234 };
    const run = async (numPages: number, concurrent: boolean) => {
      const engine = await openEngine(f, numPages, { maxPrefillChunkTokens: 16, decodeReserveTokens: 0 });
      const make = (prompt: number[], i: number) =>
        collect(engine.generate(request(`s${i}`, prompt, 20, { sampling, n: 2 })));
      const outputs = [];
      if (concurrent) outputs.push(...(await Promise.all(prompts.map(make))));
      else for (const [i, prompt] of prompts.entries()) outputs.push(await make(prompt, i));
      const numPreemptions = engine.stats().numPreemptions;
      engine.checkInvariants();
      await engine.close();
      return { outputs: outputs.map((o) => o.map((c) => c.tokenIds)), numPreemptions };
    };
    const alone = await run(256, false);
    const batched = await run(256, true);
    const pressured = await run(12, true);
    assert.ok(pressured.numPreemptions > 0, 'the small pool preempted');
    assert.deepEqual(batched.outputs, alone.outputs);
    assert.deepEqual(pressured.outputs, alone.outputs);
    for (const choices of alone.outputs)
      assert.notDeepEqual(choices[0], choices[1], 'choices use different seeds');
  });

  test('penalties (repetition, frequency, presence) see the right prompt and output tokens', async () => {
    const f = fixture('tiny-qwen3');
    const random = seededRandom(31);
    const prompts = Array.from({ length: 5 }, (_, i) => randomTokens(random, 4 + i * 11, 600));
    const sampling = {
      ...defaultSampling(),
      repetitionPenalty: 1.3,
      frequencyPenalty: 0.4,
      presencePenalty: 0.2,
    };
    const expected = [];
    for (const prompt of prompts) expected.push(await executorGreedy(f, prompt, 16, sampling));
    assert.notDeepEqual(
      expected[0],
      await executorGreedy(f, prompts[0]!, 16),
      'the penalties change the output',
    );
    for (const numPages of [256, 9]) {
      const engine = await openEngine(f, numPages, { maxPrefillChunkTokens: 8, decodeReserveTokens: 0 });
      const outputs = await Promise.all(
        prompts.map((prompt, i) => collect(engine.generate(request(`p${i}`, prompt, 16, { sampling })))),
      );
      for (const [i, output] of outputs.entries())
        assert.deepEqual(output[0]!.tokenIds, expected[i], `pool ${numPages}`);
      if (numPages === 9) assert.ok(engine.stats().numPreemptions > 0);
      await engine.close();
    }
  });

  test('a second request sharing a 200-token prefix computes only its suffix', async () => {
    const f = fixture('tiny-qwen2');
    const engine = await openEngine(f, 256);
    const random = seededRandom(17);
    const prefix = randomTokens(random, 200, 500);
    const first = await collect(engine.generate(request('first', [...prefix, 10, 11, 12, 13, 14], 8)));
    assert.equal(first[0]!.numCachedTokens, 0);
    const before = engine.stats().numForwardTokens;
    const prompt = [...prefix, 20, 21, 22];
    const second = await collect(engine.generate(request('second', prompt, 8)));
    const numCached = 12 * 16; // the prefix's full pages
    assert.equal(second[0]!.numCachedTokens, numCached);
    // The suffix of the prompt, then one token per decode step after the first sample.
    assert.equal(engine.stats().numForwardTokens - before, prompt.length - numCached + 7);
    // And the tokens equal a run without the cache.
    const reference = await openEngine(f, 256, { enablePrefixCache: false });
    const expected = await collect(reference.generate(request('ref', prompt, 8)));
    assert.deepEqual(second[0]!.tokenIds, expected[0]!.tokenIds);
    await reference.close();
    await engine.close();
  });

  test('100 randomized requests with random cancellations free every page', async () => {
    const f = fixture('tiny-qwen3');
    const random = seededRandom(2024);
    const shared = randomTokens(random, 60, 600);
    const requests: GenerateRequest[] = [];
    const cancelAfterMs: (number | null)[] = [];
    for (let i = 0; i < 100; i++) {
      const prompt =
        random() < 0.6
          ? [
              ...shared.slice(0, 10 + Math.floor(random() * 50)),
              ...randomTokens(random, 1 + Math.floor(random() * 30), 600),
            ]
          : randomTokens(random, 1 + Math.floor(random() * 80), 600);
      requests.push(request(`r${i}`, prompt, 1 + Math.floor(random() * 20), { n: random() < 0.1 ? 2 : 1 }));
      cancelAfterMs.push(random() < 0.4 ? Math.floor(random() * 40) : null);
    }
    const engine = await openEngine(f, 40, { maxPrefillChunkTokens: 32, maxRunningSequences: 16 });
    const outcomes = await Promise.all(
      requests.map(async (r, i) => {
        const controller = new AbortController();
        const cancel = cancelAfterMs[i]!;
        if (cancel !== null) setTimeout(() => controller.abort(), cancel);
        return collect(engine.generate(r, controller.signal));
      }),
    );
    engine.checkInvariants();
    const load = engine.load();
    assert.equal(load.numRunning + load.numWaiting, 0);
    assert.equal(load.numFreePages + load.numEvictablePages, load.numTotalPages);
    assert.ok(
      outcomes.some((o) => o.some((c) => c.finishReason === 'abort')),
      'some requests were cancelled',
    );
    // Greedy choice 0 of every request is a prefix of (or equal to) its uncontended output.
    const reference = await openEngine(f, 512, { enablePrefixCache: false });
    const expected = await Promise.all(requests.map((r) => collect(reference.generate({ ...r, n: 1 }))));
    for (const [i, outcome] of outcomes.entries()) {
      const choice = outcome[0]!;
      const full = expected[i]![0]!.tokenIds;
      if (choice.finishReason === 'abort')
        assert.deepEqual(choice.tokenIds, full.slice(0, choice.tokenIds.length));
      else assert.deepEqual(choice.tokenIds, full, `request ${i}`);
    }
    await reference.close();
    await engine.close();
  });
});
