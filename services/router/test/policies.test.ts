import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '@tandem/common';
import { toBlockKeys } from '../src/kv/block-keys.ts';
import { createPolicy, defaultCacheAwareConfig } from '../src/policy/policies.ts';
import type { RoutingRequest, WorkerView } from '../src/policy/types.ts';

function worker(id: string, slot: number, overrides: Partial<WorkerView> = {}): WorkerView {
  return {
    workerId: id,
    slot,
    numInflight: 0,
    load: null,
    numQueuedPrefillTokens: 0,
    numDecoding: 0,
    prefillTokensPerMs: 2,
    stepCost: null,
    pageSize: 16,
    lastPickedSeq: 0,
    ...overrides,
  };
}

const request: RoutingRequest = {
  requestId: 'r1',
  numPromptTokens: 160,
  blockKeys: toBlockKeys(Array.from({ length: 10 }, (_, i) => BigInt(i + 1))),
  routingKey: null,
};

function depths(bySlot: Record<number, number>): Uint32Array {
  const array = new Uint32Array(32);
  for (const [slot, depth] of Object.entries(bySlot)) array[Number(slot)] = depth;
  return array;
}

test('cache_aware prefers the worker holding the prefix and records its cost terms', () => {
  const policy = createPolicy('cache_aware');
  const workers = [worker('a', 0), worker('b', 1)];
  const decision = policy.decide(request, workers, {
    matchDepthBySlot: depths({ 1: 8 }),
    random: Math.random,
  });
  assert.equal(decision.workerId, 'b');
  const b = decision.candidates.find((c) => c.workerId === 'b')!;
  assert.equal(b.terms.cachedTokens, 128);
  assert.equal(b.terms.uncachedTokens, 32);
  assert.equal(b.cost, 16);
});

test('cache_aware weighs queued prefill work against the cache hit', () => {
  const policy = createPolicy('cache_aware');
  const workers = [worker('a', 0), worker('b', 1, { numQueuedPrefillTokens: 4000, numDecoding: 1 })];
  const decision = policy.decide(request, workers, {
    matchDepthBySlot: depths({ 1: 8 }),
    random: Math.random,
  });
  assert.equal(decision.workerId, 'a');
  const b = decision.candidates.find((c) => c.workerId === 'b')!;
  assert.equal(b.terms.queuedPrefillTokens, 4000);
  assert.equal(b.terms.decodeMs, 2);
});

test('ties go to the lower load, then the least recently picked, then the smaller id', () => {
  const policy = createPolicy('cache_aware');
  const inputs = { matchDepthBySlot: depths({}), random: Math.random };
  assert.equal(policy.decide(request, [worker('b', 1), worker('a', 0)], inputs).workerId, 'a');
  assert.equal(
    policy.decide(
      request,
      [worker('a', 0, { lastPickedSeq: 5 }), worker('b', 1, { lastPickedSeq: 4 })],
      inputs,
    ).workerId,
    'b',
  );
  // One in-flight request costs decodeMsPerRequest (2 ms) on an 80 ms prefill: a tie, broken on load.
  assert.equal(
    policy.decide(request, [worker('a', 0, { numInflight: 1 }), worker('b', 1, { lastPickedSeq: 9 })], inputs)
      .workerId,
    'b',
  );
});

test('the hot-spot guard skips a worker far above the mean load even if it holds the prefix', () => {
  const policy = createPolicy('cache_aware');
  const workers = [worker('a', 0, { numInflight: 12 }), worker('b', 1), worker('c', 2)];
  const decision = policy.decide(request, workers, {
    matchDepthBySlot: depths({ 0: 10 }),
    random: Math.random,
  });
  assert.notEqual(decision.workerId, 'a');
  assert.match(decision.candidates.find((c) => c.workerId === 'a')!.excluded ?? '', /hot spot/);
});

test('round_robin cycles through workers by pick order', () => {
  const policy = createPolicy('round_robin');
  const workers = [worker('a', 0), worker('b', 1), worker('c', 2)];
  const picks: string[] = [];
  for (let seq = 1; seq <= 6; seq++) {
    const chosen = policy.decide(request, workers, { matchDepthBySlot: null, random: Math.random }).workerId!;
    picks.push(chosen);
    workers.find((w) => w.workerId === chosen)!.lastPickedSeq = seq;
  }
  assert.deepEqual(picks, ['a', 'b', 'c', 'a', 'b', 'c']);
});

test('random replays exactly with the same seed', () => {
  const policy = createPolicy('random');
  const workers = [worker('a', 0), worker('b', 1), worker('c', 2)];
  const run = (seed: number): string[] => {
    const random = seededRandom(seed);
    return Array.from(
      { length: 20 },
      () => policy.decide(request, workers, { matchDepthBySlot: null, random }).workerId!,
    );
  };
  assert.deepEqual(run(42), run(42));
  assert.equal(new Set(run(42)).size, 3);
});

test('power_of_two picks the less loaded of two sampled workers', () => {
  const policy = createPolicy('power_of_two');
  const workers = [worker('a', 0, { numInflight: 5 }), worker('b', 1, { numInflight: 1 })];
  assert.equal(
    policy.decide(request, workers, { matchDepthBySlot: null, random: seededRandom(1) }).workerId,
    'b',
  );
  const three = [...workers, worker('c', 2, { numInflight: 3 })];
  const decision = policy.decide(request, three, { matchDepthBySlot: null, random: seededRandom(3) });
  assert.equal(decision.candidates.filter((c) => c.excluded === null).length, 2);
});

test('consistent_hash keeps a routing key on one worker and moves few keys when one joins', () => {
  const policy = createPolicy('consistent_hash');
  const two = [worker('a', 0), worker('b', 1)];
  const three = [...two, worker('c', 2)];
  let moved = 0;
  for (let key = 0; key < 300; key++) {
    const keyed = { ...request, routingKey: `session-${key}` };
    const before = policy.decide(keyed, two, { matchDepthBySlot: null, random: Math.random }).workerId;
    assert.equal(policy.decide(keyed, two, { matchDepthBySlot: null, random: Math.random }).workerId, before);
    const after = policy.decide(keyed, three, { matchDepthBySlot: null, random: Math.random }).workerId;
    if (after !== before) {
      moved++;
      assert.equal(after, 'c');
    }
  }
  assert.ok(moved > 50 && moved < 150, `moved ${moved} of 300`);
});

test('within the tie band the larger prefix match wins over lower load (a burst stays together)', () => {
  const policy = createPolicy('cache_aware');
  // a holds 9 of 10 blocks but has the first request of the burst queued: 16 + 160 tokens to
  // prefill against b's 160. Within 15%: the prefix holder keeps the burst.
  const workers = [worker('a', 0, { numInflight: 1, numQueuedPrefillTokens: 160 }), worker('b', 1)];
  const decision = policy.decide(request, workers, {
    matchDepthBySlot: depths({ 0: 9 }),
    random: Math.random,
  });
  assert.equal(decision.workerId, 'a');
  // Far outside the band, the cheaper worker wins regardless of the match.
  const busy = [worker('a', 0, { numInflight: 1, numQueuedPrefillTokens: 2000 }), worker('b', 1)];
  assert.equal(
    policy.decide(request, busy, { matchDepthBySlot: depths({ 0: 9 }), random: Math.random }).workerId,
    'b',
  );
});

test('cache_aware charges recomputing a prefix another candidate holds (a group stays together)', () => {
  // a holds 9 of 10 blocks with 600 tokens queued: by TTFT alone (16 + 600 vs 160 tokens) b
  // would win and the group would be split; recomputing 144 held tokens costs 8 x 144 more.
  const workers = [worker('a', 0, { numInflight: 4, numQueuedPrefillTokens: 600 }), worker('b', 1)];
  const inputs = { matchDepthBySlot: depths({ 0: 9 }), random: Math.random };
  const decision = createPolicy('cache_aware').decide(request, workers, inputs);
  assert.equal(decision.workerId, 'a');
  const [a, b] = ['a', 'b'].map((id) => decision.candidates.find((c) => c.workerId === id)!);
  assert.equal(a!.terms.duplicateTokens, 0);
  assert.equal(b!.terms.duplicateTokens, 144);
  assert.equal(b!.terms.duplicateMs, (8 * 144) / 2);
  assert.equal(b!.cost, 160 / 2 + (8 * 144) / 2);
  // With the weight at 0 the cost is predicted TTFT alone, and the shorter queue wins.
  const ttftOnly = createPolicy('cache_aware', { ...defaultCacheAwareConfig, duplicatePrefillWeight: 0 });
  assert.equal(ttftOnly.decide(request, workers, inputs).workerId, 'b');
});

test('cache_aware: a prefix nobody holds, or one held only by a hot spot, goes by queue alone', () => {
  const policy = createPolicy('cache_aware');
  const fresh = policy.decide(request, [worker('a', 0, { numQueuedPrefillTokens: 600 }), worker('b', 1)], {
    matchDepthBySlot: depths({}),
    random: Math.random,
  });
  assert.equal(fresh.workerId, 'b');
  assert.ok(fresh.candidates.every((c) => c.terms.duplicateTokens === 0));
  // The holder is skipped by the hot-spot guard: the rest are not charged for its blocks.
  const spill = policy.decide(
    request,
    [
      worker('a', 0, { numInflight: 12 }),
      worker('b', 1, { numQueuedPrefillTokens: 300 }),
      worker('c', 2, { numQueuedPrefillTokens: 100 }),
    ],
    { matchDepthBySlot: depths({ 0: 10 }), random: Math.random },
  );
  assert.equal(spill.workerId, 'c');
  assert.equal(spill.candidates.find((c) => c.workerId === 'b')!.terms.duplicateTokens, 0);
});
