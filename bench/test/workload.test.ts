import assert from 'node:assert/strict';
import { test } from 'node:test';
import { arrivalOffsetsMs, poissonArrivalOffsetsMs } from '../src/arrivals.ts';
import { createRng } from '../src/rng.ts';
import { summarize } from '../src/stats.ts';
import { buildWorkload } from '../src/workload/index.ts';
import { partLength } from '../src/workload/prompt.ts';
import { SHAREGPT_LIKE } from '../src/workload/sharegpt-like.ts';
import type { PromptSource, Turn, WorkloadSpec } from '../src/workload/types.ts';

const IDS: PromptSource = { format: 'token-ids', minTokenId: 16, maxTokenId: 511 };
const WORDS: PromptSource = { format: 'words', minTokenId: 16, maxTokenId: 511 };

const onlyTurn = (turns: Turn[]): Turn => turns[0] as Turn;

test('workloads are deterministic per seed and differ across seeds', () => {
  const specs: WorkloadSpec[] = [
    { type: 'random', numPrompts: 20, inputLen: 50, outputLen: 10, rangeRatio: 0.2 },
    { type: 'sharegpt-like', numPrompts: 20, outputLen: null },
    {
      type: 'shared-prefix',
      numGroups: 3,
      promptsPerGroup: 4,
      systemPromptLen: 30,
      questionLen: 5,
      outputLen: 4,
      order: 'shuffled',
    },
    {
      type: 'multi-turn',
      numConversations: 3,
      turnsPerConversation: 2,
      inputLen: 10,
      outputLen: 4,
      rangeRatio: 1,
    },
  ];
  for (const spec of specs) {
    assert.deepEqual(buildWorkload(spec, 1, IDS), buildWorkload(spec, 1, IDS), spec.type);
    assert.notDeepEqual(buildWorkload(spec, 1, IDS), buildWorkload(spec, 2, IDS), spec.type);
  }
});

test('random: lengths uniform in [floor(len * ratio), len], token ids in range', () => {
  const conversations = buildWorkload(
    { type: 'random', numPrompts: 4000, inputLen: 100, outputLen: 20, rangeRatio: 0.5 },
    0,
    IDS,
  );
  const inputs = conversations.map((c) => onlyTurn(c.turns).numPlannedPromptTokens);
  const outputs = conversations.map((c) => onlyTurn(c.turns).maxOutputTokens);
  assert.equal(Math.min(...inputs), 50);
  assert.equal(Math.max(...inputs), 100);
  assert.equal(Math.min(...outputs), 10);
  assert.equal(Math.max(...outputs), 20);
  const mean = (summarize(inputs)?.mean ?? 0) - 75;
  assert.ok(Math.abs(mean) < 1, `mean input length off by ${mean}`);
  for (const c of conversations.slice(0, 50)) {
    const turn = onlyTurn(c.turns);
    assert.equal(turn.user.type, 'token-ids');
    assert.equal(partLength(turn.user), turn.numPlannedPromptTokens);
    if (turn.user.type === 'token-ids') assert.ok(turn.user.ids.every((id) => id >= 16 && id <= 511));
  }
  const fixed = buildWorkload(
    { type: 'random', numPrompts: 50, inputLen: 33, outputLen: 7, rangeRatio: 1 },
    0,
    WORDS,
  );
  for (const c of fixed) {
    const turn = onlyTurn(c.turns);
    assert.equal(partLength(turn.user), 33);
    assert.equal(turn.maxOutputTokens, 7);
  }
});

test('sharegpt-like: log-normal lengths with the documented medians, clipped', () => {
  const conversations = buildWorkload({ type: 'sharegpt-like', numPrompts: 5000, outputLen: null }, 0, IDS);
  const inputs = conversations.map((c) => onlyTurn(c.turns).numPlannedPromptTokens);
  const outputs = conversations.map((c) => onlyTurn(c.turns).maxOutputTokens);
  const inStats = summarize(inputs);
  const outStats = summarize(outputs);
  assert.ok(inStats !== null && outStats !== null);
  assert.ok(Math.abs(inStats.p50 - SHAREGPT_LIKE.inputMedian) < 10, `input median ${inStats.p50}`);
  assert.ok(Math.abs(outStats.p50 - SHAREGPT_LIKE.outputMedian) < 12, `output median ${outStats.p50}`);
  // Log-normal: the mean sits above the median by about exp(sigma^2 / 2).
  assert.ok(inStats.mean > 1.4 * inStats.p50, `input mean ${inStats.mean}`);
  assert.ok(inStats.min >= SHAREGPT_LIKE.minLen && inStats.max <= SHAREGPT_LIKE.maxInputLen);
  for (const [i, c] of conversations.entries()) {
    assert.ok((inputs[i] as number) + onlyTurn(c.turns).maxOutputTokens <= SHAREGPT_LIKE.maxTotalLen);
  }
  const capped = buildWorkload({ type: 'sharegpt-like', numPrompts: 10, outputLen: 16 }, 0, IDS);
  assert.ok(capped.every((c) => onlyTurn(c.turns).maxOutputTokens === 16));
});

test('shared-prefix: groups share one system prompt, questions differ, order is shuffled', () => {
  const spec: WorkloadSpec = {
    type: 'shared-prefix',
    numGroups: 16,
    promptsPerGroup: 8,
    systemPromptLen: 512,
    questionLen: 64,
    outputLen: 16,
    order: 'shuffled',
  };
  const conversations = buildWorkload(spec, 0, IDS);
  assert.equal(conversations.length, 128);
  assert.deepEqual(
    conversations.map((c) => c.id),
    [...conversations.keys()],
  );
  const systems = new Map<number, string>();
  for (const c of conversations) {
    const turn = onlyTurn(c.turns);
    assert.ok(turn.system !== null && c.groupId !== null);
    assert.equal(partLength(turn.system), 512);
    assert.equal(partLength(turn.user), 64);
    assert.equal(turn.numPlannedPromptTokens, 576);
    assert.equal(turn.maxOutputTokens, 16);
    const key = JSON.stringify(turn.system);
    if (systems.has(c.groupId)) assert.equal(systems.get(c.groupId), key);
    else systems.set(c.groupId, key);
  }
  assert.equal(new Set(systems.values()).size, 16, 'each group has its own system prompt');
  const groups = conversations.map((c) => c.groupId);
  assert.notDeepEqual(
    groups,
    [...groups].sort((a, b) => (a ?? 0) - (b ?? 0)),
    'groups interleave',
  );
  const grouped = buildWorkload({ ...spec, order: 'grouped' }, 0, IDS).map((c) => c.groupId);
  assert.deepEqual(
    grouped,
    [...grouped].sort((a, b) => (a ?? 0) - (b ?? 0)),
  );
});

test('multi-turn: every conversation has its turns, all in words', () => {
  const conversations = buildWorkload(
    {
      type: 'multi-turn',
      numConversations: 5,
      turnsPerConversation: 4,
      inputLen: 12,
      outputLen: 3,
      rangeRatio: 1,
    },
    0,
    IDS,
  );
  assert.equal(conversations.length, 5);
  for (const c of conversations) {
    assert.equal(c.turns.length, 4);
    for (const turn of c.turns) {
      assert.equal(turn.user.type, 'text');
      assert.equal(partLength(turn.user), 12);
    }
  }
});

test('Poisson arrivals: exponential gaps with mean 1/rate, seeded; infinite rate sends all at once', () => {
  const offsets = poissonArrivalOffsetsMs(20001, 50, createRng(9));
  const gaps = offsets.slice(1).map((t, i) => t - (offsets[i] as number));
  const s = summarize(gaps);
  assert.ok(s !== null);
  assert.ok(Math.abs(s.mean - 20) < 0.6, `mean gap ${s.mean} ms`);
  assert.ok(Math.abs(s.std / s.mean - 1) < 0.05, `coefficient of variation ${s.std / s.mean}`);
  // Exponential median = mean * ln 2.
  assert.ok(Math.abs(s.p50 - 20 * Math.LN2) < 0.6, `median gap ${s.p50}`);
  assert.deepEqual(
    poissonArrivalOffsetsMs(5, 50, createRng(9)),
    poissonArrivalOffsetsMs(5, 50, createRng(9)),
  );
  assert.deepEqual(poissonArrivalOffsetsMs(4, Number.POSITIVE_INFINITY, createRng(9)), [0, 0, 0, 0]);
});

test('rng: uniform ints cover the range evenly, normal has mean 0 and std 1', () => {
  const rng = createRng(42);
  const counts = new Array(10).fill(0) as number[];
  for (let i = 0; i < 100000; i++) {
    const k = rng.int(0, 9);
    counts[k] = (counts[k] ?? 0) + 1;
  }
  for (const c of counts) assert.ok(Math.abs(c - 10000) < 500, `bucket ${c}`);
  const normals = Array.from({ length: 50000 }, () => rng.normal());
  const s = summarize(normals);
  assert.ok(s !== null && Math.abs(s.mean) < 0.02 && Math.abs(s.std - 1) < 0.02);
});

test('burstiness: gamma gaps keep the mean 1/rate, their spread is 1/sqrt(shape)', () => {
  for (const shape of [0.25, 1, 4]) {
    const offsets = arrivalOffsetsMs(40001, 50, shape, createRng(11));
    const gaps = offsets.slice(1).map((t, i) => t - (offsets[i] as number));
    const s = summarize(gaps);
    assert.ok(s !== null);
    assert.ok(Math.abs(s.mean - 20) < 0.05 * 20, `shape ${shape}: mean gap ${s.mean}`);
    const cv = s.std / s.mean;
    assert.ok(Math.abs(cv - 1 / Math.sqrt(shape)) < 0.06 / Math.sqrt(shape), `shape ${shape}: CV ${cv}`);
  }
});
