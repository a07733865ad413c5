// Sampling: seeded draws are reproducible and independent of batch composition; every filter
// and penalty matches a reference computed here from the returned raw logits; draws follow the
// returned distribution.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultSampling, Executor, type SamplingParams, type SequenceInput } from '../src/index.ts';
import {
  assertSameLogprobs,
  generateSequential,
  loadFixtures,
  pageRange,
  seqInput,
  testDeviceOptions,
} from './helpers.ts';

const fixture = loadFixtures().find((f) => f.name === 'tiny-qwen2');
assert.ok(fixture);
const prompt = fixture.cases[4]?.prompt_ids ?? [];
const vocabSize = (
  JSON.parse(readFileSync(join(fixture.dir, 'config.json'), 'utf8')) as { vocab_size: number }
).vocab_size;

/** Constrained decoding's input form: every third id (2, 5, 8, ...) and the last one. */
function everyThirdMask(): Uint32Array {
  const mask = new Uint32Array(Math.ceil(vocabSize / 32));
  for (let id = 2; id < vocabSize; id += 3) mask[id >>> 5] = (mask[id >>> 5] ?? 0) | (1 << (id & 31));
  mask[(vocabSize - 1) >>> 5] = (mask[(vocabSize - 1) >>> 5] ?? 0) | (1 << ((vocabSize - 1) & 31));
  return mask;
}

/** The documented order: bias, mask, repetition, frequency/presence, temperature, top-k, top-p, min-p. */
function referenceProbs(
  logits: Float32Array,
  sp: SamplingParams,
  promptIds: number[],
  outputIds: number[],
): Float64Array {
  const n = logits.length;
  const work = Float64Array.from(logits);
  for (const [id, bias] of sp.logitBias ?? []) work[id] = (work[id] ?? 0) + bias;
  if (sp.allowedTokenIds !== null) {
    const allowed = new Set(sp.allowedTokenIds);
    for (let i = 0; i < n; i++) if (!allowed.has(i)) work[i] = Number.NEGATIVE_INFINITY;
  }
  if (sp.allowedTokenMask !== null) {
    const mask = sp.allowedTokenMask;
    for (let i = 0; i < n; i++)
      if ((((mask[i >>> 5] ?? 0) >>> (i & 31)) & 1) === 0) work[i] = Number.NEGATIVE_INFINITY;
  }
  if (sp.repetitionPenalty !== 1) {
    for (const id of new Set([...promptIds, ...outputIds])) {
      const v = work[id] ?? 0;
      work[id] = v < 0 ? v * sp.repetitionPenalty : v / sp.repetitionPenalty;
    }
  }
  const counts = new Map<number, number>();
  for (const id of outputIds) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, count] of counts) {
    work[id] = (work[id] ?? 0) - sp.frequencyPenalty * count - sp.presencePenalty;
  }
  const p = new Float64Array(n);
  if (sp.temperature === 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if ((work[i] ?? 0) > (work[best] ?? 0)) best = i;
    p[best] = 1;
    return p;
  }
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) max = Math.max(max, (work[i] ?? 0) / sp.temperature);
  for (let i = 0; i < n; i++) p[i] = Math.exp((work[i] ?? 0) / sp.temperature - max);
  const renormalise = () => {
    const s = p.reduce((a, b) => a + b, 0);
    for (let i = 0; i < n; i++) p[i] = (p[i] ?? 0) / s;
  };
  renormalise();
  const order = () =>
    Array.from({ length: n }, (_, i) => i).sort((a, b) => (p[b] ?? 0) - (p[a] ?? 0) || a - b);
  if (sp.topK > 0 && sp.topK < n) {
    const kth = p[order()[sp.topK - 1] ?? 0] ?? 0;
    for (let i = 0; i < n; i++) if ((p[i] ?? 0) < kth) p[i] = 0;
    renormalise();
  }
  if (sp.topP < 1) {
    let cum = 0;
    let keeping = true;
    for (const i of order()) {
      if (!keeping) p[i] = 0;
      else {
        cum += p[i] ?? 0;
        if (cum >= sp.topP) keeping = false;
      }
    }
    renormalise();
  }
  if (sp.minP > 0) {
    const threshold = sp.minP * Math.max(...p);
    for (let i = 0; i < n; i++) if ((p[i] ?? 0) < threshold) p[i] = 0;
    renormalise();
  }
  return p;
}

describe('sampling', () => {
  let ex: Executor;
  before(async () => {
    ex = await Executor.open({ ...testDeviceOptions, modelDir: fixture.dir, pageSize: 16, numPages: 512 });
  });
  after(async () => {
    await ex.close();
  });

  const withParams = (over: Partial<SamplingParams>): SamplingParams => ({ ...defaultSampling(), ...over });

  test('same seed, same output; another seed, another output', async () => {
    const sp = withParams({ temperature: 1.2, seed: 1234 });
    const a = await generateSequential(ex, prompt, 24, pageRange(0, 8), sp);
    const b = await generateSequential(ex, prompt, 24, pageRange(8, 8), sp);
    const c = await generateSequential(
      ex,
      prompt,
      24,
      pageRange(0, 8),
      withParams({ temperature: 1.2, seed: 99 }),
    );
    assert.deepEqual(a.tokenIds, b.tokenIds);
    assert.notDeepEqual(a.tokenIds, c.tokenIds);
  });

  test('the draw does not depend on the rest of the batch', async () => {
    const sp = withParams({ temperature: 1.0, seed: 7 });
    const alone = await ex.forward([
      seqInput({ tokenIds: Int32Array.from(prompt), pageTable: pageRange(0, 8), sampling: sp }),
    ]);
    const others: SequenceInput[] = [1, 2, 3].map((k) =>
      seqInput({
        tokenIds: Int32Array.from(prompt.slice(0, 3 + k)),
        pageTable: pageRange(8 * k, 8),
        sampling: withParams({ temperature: 1.0, seed: k }),
      }),
    );
    const mixed = await ex.forward([
      ...others.slice(0, 2),
      seqInput({ tokenIds: Int32Array.from(prompt), pageTable: pageRange(40, 8), sampling: sp }),
      ...others.slice(2),
    ]);
    assert.equal(mixed[2]?.samples[0]?.tokenId, alone[0]?.samples[0]?.tokenId);
    assertSameLogprobs(
      [mixed[2]?.samples[0]?.logprob ?? Number.NaN],
      [alone[0]?.samples[0]?.logprob ?? Number.NaN],
      'logprob alone vs in a batch',
    );
  });

  const outputIds = [5, 9, 9, 13, 40, 40, 40];
  const cases: [string, Partial<SamplingParams>][] = [
    ['temperature', { temperature: 0.7 }],
    ['top-k', { temperature: 1.0, topK: 5 }],
    ['top-p', { temperature: 1.0, topP: 0.6 }],
    ['min-p', { temperature: 1.0, minP: 0.2 }],
    ['top-k + top-p + min-p', { temperature: 0.8, topK: 20, topP: 0.9, minP: 0.05 }],
    ['repetition penalty', { temperature: 1.0, repetitionPenalty: 1.5 }],
    ['frequency + presence penalties', { temperature: 1.0, frequencyPenalty: 0.8, presencePenalty: 0.5 }],
    [
      'logit bias',
      {
        temperature: 1.0,
        logitBias: new Map([
          [77, 6],
          [3, -100],
        ]),
      },
    ],
    ['allowed token ids', { temperature: 1.0, allowedTokenIds: Int32Array.of(11, 22, 33, 44) }],
    ['allowed token bitmask', { temperature: 0.9, allowedTokenMask: everyThirdMask() }],
    ['greedy under a bitmask', { temperature: 0, allowedTokenMask: everyThirdMask() }],
    [
      'allowed ids and bitmask together',
      { temperature: 1.0, allowedTokenIds: Int32Array.of(5, 11, 26, 47), allowedTokenMask: everyThirdMask() },
    ],
    [
      'greedy with penalties and bias',
      { temperature: 0, repetitionPenalty: 2, logitBias: new Map([[77, 3]]) },
    ],
  ];
  for (const [name, over] of cases) {
    test(`filter: ${name}`, async () => {
      const sp = withParams({ ...over, seed: 5, numTopLogprobs: 5 });
      const [out] = await ex.forward([
        seqInput({
          tokenIds: Int32Array.from(prompt),
          pageTable: pageRange(0, 8),
          sampling: sp,
          promptTokenIds: Int32Array.from(prompt),
          outputTokenIds: Int32Array.from(outputIds),
          returnLogits: true,
          returnProbs: true,
        }),
      ]);
      const sample = out?.samples[0];
      assert.ok(sample?.logits && sample.probs);
      const expected = referenceProbs(sample.logits, sp, prompt, outputIds);
      let maxDiff = 0;
      for (let i = 0; i < expected.length; i++)
        maxDiff = Math.max(maxDiff, Math.abs((sample.probs[i] ?? 0) - (expected[i] ?? 0)));
      assert.ok(maxDiff < 1e-5, `probs differ from the reference by ${maxDiff}`);
      assert.ok((sample.probs[sample.tokenId] ?? 0) > 0, 'sampled a token the filters removed');
      // logprob and top logprobs describe the raw distribution.
      const logits = Array.from(sample.logits);
      const max = Math.max(...logits);
      const lse = max + Math.log(logits.reduce((s, l) => s + Math.exp(l - max), 0));
      assert.ok(Math.abs(sample.logprob - ((logits[sample.tokenId] ?? 0) - lse)) < 1e-5);
      const top = logits
        .map((l, i) => ({ i, l }))
        .sort((a, b) => b.l - a.l || a.i - b.i)
        .slice(0, 5);
      assert.deepEqual(
        sample.topLogprobs.map((t) => t.tokenId),
        top.map((t) => t.i),
      );
      for (const [r, t] of sample.topLogprobs.entries())
        assert.ok(Math.abs(t.logprob - ((top[r]?.l ?? 0) - lse)) < 1e-5);
    });
  }

  test('draws follow the returned distribution', async () => {
    const numDraws = 400;
    const batch = Array.from({ length: numDraws }, (_, k) =>
      seqInput({
        tokenIds: Int32Array.of(prompt[0] ?? 1),
        pageTable: Int32Array.of(k),
        sampling: withParams({ temperature: 1.0, topK: 4, seed: 1000 + k }),
        returnProbs: k === 0,
      }),
    );
    const outs = await ex.forward(batch);
    const probs = outs[0]?.samples[0]?.probs;
    assert.ok(probs);
    const counts = new Map<number, number>();
    for (const o of outs) {
      const id = o.samples[0]?.tokenId ?? -1;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    for (const [id, _count] of counts) assert.ok((probs[id] ?? 0) > 0, `drew ${id}, which top-k removed`);
    for (let id = 0; id < probs.length; id++) {
      const p = probs[id] ?? 0;
      if (p === 0) continue;
      const freq = (counts.get(id) ?? 0) / numDraws;
      const sigma = Math.sqrt((p * (1 - p)) / numDraws);
      assert.ok(Math.abs(freq - p) < 5 * sigma + 1e-3, `token ${id}: drawn ${freq}, probability ${p}`);
    }
  });
});
