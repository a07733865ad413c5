import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeGoodput, meetsSlo, summarizeRun } from '../src/metrics.ts';
import type { RequestRecord } from '../src/request-record.ts';
import { cdfPoints, percentile, summarize } from '../src/stats.ts';

test('percentiles interpolate linearly between closest ranks (numpy default)', () => {
  const values = [4, 1, 3, 2];
  assert.equal(percentile(values, 0), 1);
  assert.equal(percentile(values, 50), 2.5);
  assert.ok(Math.abs((percentile(values, 90) ?? 0) - 3.7) < 1e-12);
  assert.ok(Math.abs((percentile(values, 99) ?? 0) - 3.97) < 1e-12);
  assert.equal(percentile(values, 100), 4);
  assert.equal(percentile([7], 99), 7);
  assert.equal(percentile([], 50), null);
  // 1..101: the p-th percentile is exactly 1 + p.
  const hundred = Array.from({ length: 101 }, (_, i) => 101 - i);
  for (const p of [1, 10, 50, 90, 99]) assert.equal(percentile(hundred, p), 1 + p);
});

test('summarize gives count, mean, population std, min, percentiles and max', () => {
  const s = summarize([2, 4, 4, 4, 5, 5, 7, 9]);
  assert.ok(s !== null);
  assert.equal(s.count, 8);
  assert.equal(s.mean, 5);
  assert.equal(s.std, 2);
  assert.equal(s.min, 2);
  assert.equal(s.p50, 4.5);
  assert.equal(s.max, 9);
  assert.equal(summarize([]), null);
});

test('cdfPoints are sorted and end at 1', () => {
  assert.deepEqual(cdfPoints([3, 1, 2, 4]), [
    [1, 0.25],
    [2, 0.5],
    [3, 0.75],
    [4, 1],
  ]);
});

function record(overrides: Partial<RequestRecord>): RequestRecord {
  return {
    model: 'm',
    conversationId: 0,
    turn: 0,
    groupId: null,
    responseId: null,
    ok: true,
    error: null,
    startedAtMs: 0,
    sendDelayMs: 0,
    endedAtMs: 100,
    ttftMs: 20,
    e2eMs: 100,
    chunkOffsetsMs: [20, 60, 100],
    itlMs: [40, 40],
    tpotMs: 40,
    numPlannedPromptTokens: 10,
    maxOutputTokens: 3,
    numPromptTokens: 10,
    numOutputTokens: 3,
    numCachedTokens: 4,
    usageReported: true,
    ...overrides,
  };
}

test('goodput counts completed requests meeting every given SLO', () => {
  const records = [
    record({}),
    record({ ttftMs: 80 }), // misses TTFT
    record({ tpotMs: 60 }), // misses TPOT
    record({ tpotMs: null, numOutputTokens: 1 }), // one token: no TPOT to miss
    record({ ok: false, error: 'boom' }),
    record({ e2eMs: 500 }), // misses only E2E
  ];
  const slo = { ttftMs: 50, tpotMs: 50, e2eMs: null };
  assert.deepEqual(
    records.map((r) => meetsSlo(r, slo)),
    [true, false, false, true, false, true],
  );
  const goodput = computeGoodput(records, slo, 2);
  assert.equal(goodput.numGood, 3);
  assert.equal(goodput.requestsPerS, 1.5);
  assert.equal(goodput.fractionGood, 3 / 5);
  assert.equal(computeGoodput(records, { ttftMs: null, tpotMs: null, e2eMs: 200 }, 1).numGood, 4);
});

test('summarizeRun: throughputs over the duration, cached-token share, failures excluded', () => {
  const records = [
    record({ numPromptTokens: 100, numCachedTokens: 60, numOutputTokens: 10 }),
    record({
      numPromptTokens: 100,
      numCachedTokens: 0,
      numOutputTokens: 30,
      ttftMs: 40,
      e2eMs: 300,
      itlMs: [10],
    }),
    record({ ok: false, numPromptTokens: 999, numOutputTokens: 999 }),
  ];
  const s = summarizeRun(records, 2, null);
  assert.equal(s.numCompleted, 2);
  assert.equal(s.numFailed, 1);
  assert.equal(s.numInputTokens, 200);
  assert.equal(s.numOutputTokens, 40);
  assert.equal(s.cachedTokenShare, 0.3);
  assert.equal(s.requestThroughputPerS, 1);
  assert.equal(s.inputTokenThroughputPerS, 100);
  assert.equal(s.outputTokenThroughputPerS, 20);
  assert.equal(s.totalTokenThroughputPerS, 120);
  assert.equal(s.ttftMs?.mean, 30);
  assert.deepEqual([s.itlMs?.count, s.itlMs?.max], [3, 40]);
  assert.equal(s.meanConcurrency, 0.2);
  assert.equal(s.goodput, null);
  // A server without usage: planned lengths and chunk counts, no cached share.
  const bare = summarizeRun(
    [record({ numPromptTokens: null, numCachedTokens: null, usageReported: false })],
    1,
    null,
  );
  assert.equal(bare.numInputTokens, 10);
  assert.equal(bare.cachedTokenShare, null);
});
