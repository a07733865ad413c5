// cache_aware on the workers' own step-cost fits (predicted TTFT, the fit and its error in the
// record, untrusted fits ignored), SGLang's load-balance guard, and session affinity (sticky
// while healthy and not overloaded, visible in the decision), on real policy objects.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toBlockKeys } from '../src/kv/block-keys.ts';
import { createPolicy, defaultCacheAwareConfig } from '../src/policy/policies.ts';
import { SessionTable } from '../src/policy/session-affinity.ts';
import { trustedStepCost } from '../src/policy/step-cost.ts';
import type { RoutingInputs, RoutingRequest, StepCostView, WorkerView } from '../src/policy/types.ts';

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

function request(overrides: Partial<RoutingRequest> = {}): RoutingRequest {
  return {
    requestId: 'r1',
    numPromptTokens: 160,
    blockKeys: toBlockKeys(Array.from({ length: 10 }, (_, i) => BigInt(i + 1))),
    routingKey: null,
    ...overrides,
  };
}

function inputs(bySlot: Record<number, number> = {}): RoutingInputs {
  const matchDepthBySlot = new Uint32Array(32);
  for (const [slot, depth] of Object.entries(bySlot)) matchDepthBySlot[Number(slot)] = depth;
  return { matchDepthBySlot, random: () => 0.5 };
}

const goodFit: StepCostView = {
  baseMs: 4,
  prefillMsPerToken: 0.25,
  decodeMsPerSequence: 0.5,
  rSquared: 0.95,
  rmseMs: 1.2,
  numSteps: 300,
  numPrefillSteps: 120,
};

test('with a trusted fit, cache_aware predicts TTFT from it and records the fit and its error', () => {
  const policy = createPolicy('cache_aware');
  // The registry turns a trusted fit into the rate (1 / ms per token); the scorer adds its step.
  const a = worker('a', 0, {
    stepCost: goodFit,
    prefillTokensPerMs: 4,
    numQueuedPrefillTokens: 40,
    numDecoding: 6,
  });
  const decision = policy.decide(request(), [a], inputs({ 0: 4 }));
  const record = decision.candidates[0]!;
  // (160 - 64 uncached + 40 queued) x 0.25 + (4 + 0.5 x 6) = 34 + 7
  assert.equal(record.terms.prefillMs, 34);
  assert.equal(record.terms.decodeMs, 7);
  assert.equal(record.cost, 41);
  assert.equal(record.terms.costFromFit, 1);
  assert.equal(record.terms.fitRSquared, 0.95);
  assert.equal(record.terms.fitRmseMs, 1.2);
  assert.equal(record.terms.fitSteps, 300);
});

test('a fit too noisy or too young is shown but not used (the EWMA decides)', () => {
  assert.equal(trustedStepCost({ ...goodFit, rSquared: 0.2 }), null);
  assert.equal(trustedStepCost({ ...goodFit, numPrefillSteps: 3 }), null);
  assert.equal(trustedStepCost({ ...goodFit, prefillMsPerToken: -0.1 }), null);
  assert.deepEqual(trustedStepCost(goodFit), goodFit);
  const policy = createPolicy('cache_aware');
  const noisy = worker('a', 0, { stepCost: { ...goodFit, rSquared: 0.1 }, numDecoding: 3 });
  const record = policy.decide(request(), [noisy], inputs()).candidates[0]!;
  assert.equal(record.terms.costFromFit, 0);
  assert.equal(record.terms.decodeMs, defaultCacheAwareConfig.decodeMsPerRequest * 3);
  assert.equal(record.terms.fitRSquared, 0.1);
});

test('a faster fitted worker wins a prompt nobody holds', () => {
  const policy = createPolicy('cache_aware');
  const slow = worker('a', 0, { stepCost: { ...goodFit, prefillMsPerToken: 1 }, prefillTokensPerMs: 1 });
  const fast = worker('b', 1, { stepCost: goodFit, prefillTokensPerMs: 4 });
  assert.equal(policy.decide(request(), [slow, fast], inputs()).workerId, 'b');
});

test("SGLang's guard: past both thresholds only the least loaded compete, even against the prefix holder", () => {
  const policy = createPolicy('cache_aware', { ...defaultCacheAwareConfig, hotspotFactor: 100 });
  const holder = worker('a', 0, { numInflight: 40 });
  const idle = worker('b', 1, { numInflight: 5 });
  const decision = policy.decide(request(), [holder, idle], inputs({ 0: 10 }));
  assert.equal(decision.workerId, 'b');
  assert.match(decision.candidates[0]!.excluded!, /^load_balance: imbalance: max load 40 - min 5 > 32/);
  // Within the absolute threshold the holder keeps its group.
  const near = policy.decide(request(), [worker('a', 0, { numInflight: 30 }), idle], inputs({ 0: 10 }));
  assert.equal(near.workerId, 'a');
  assert.equal(near.candidates[0]!.excluded, null);
});

test('a session sticks to its worker over a better cache match, and the decision says so', () => {
  const sessions = new SessionTable();
  const policy = createPolicy('cache_aware', defaultCacheAwareConfig, sessions);
  const workers = [worker('a', 0), worker('b', 1)];
  const first = policy.decide(request({ routingKey: 's1' }), workers, inputs({ 0: 10 }));
  assert.equal(first.workerId, 'a');
  assert.deepEqual(first.session, { key: 's1', previousWorkerId: null, outcome: 'new', reason: null });
  // Its next prompt is cached on b only, yet it stays on a.
  const second = policy.decide(request({ routingKey: 's1', requestId: 'r2' }), workers, inputs({ 1: 10 }));
  assert.equal(second.workerId, 'a');
  assert.equal(second.session?.outcome, 'sticky');
  assert.equal(second.candidates.find((c) => c.workerId === 'b')!.excluded, 'session: session sticks to a');
  // Without a key the cache decides.
  assert.equal(policy.decide(request(), workers, inputs({ 1: 10 })).workerId, 'b');
  assert.equal(policy.decide(request(), workers, inputs({ 1: 10 })).session, undefined);
});

test('a session moves when its worker is gone or overloaded, and follows its new worker', () => {
  const sessions = new SessionTable();
  const policy = createPolicy('round_robin', defaultCacheAwareConfig, sessions);
  sessions.remember('s1', 'a');
  // Gone (circuit open, unregistered, or tried already): it moves, and stays on the new one.
  const moved = policy.decide(request({ routingKey: 's1' }), [worker('b', 1), worker('c', 2)], inputs());
  assert.equal(moved.session?.outcome, 'moved');
  assert.match(moved.session!.reason!, /a is not a candidate/);
  assert.equal(sessions.workerOf('s1'), moved.workerId);
  // Overloaded: 8 in flight against a mean of 3 (hot-spot factor 2); round robin then moves on.
  sessions.remember('s2', 'a');
  const busy = [
    worker('a', 0, { numInflight: 8, lastPickedSeq: 5 }),
    worker('b', 1, { numInflight: 1 }),
    worker('c', 2),
  ];
  const decision = policy.decide(request({ routingKey: 's2' }), busy, inputs());
  assert.notEqual(decision.workerId, 'a');
  assert.equal(decision.session?.outcome, 'moved');
  assert.match(decision.session!.reason!, /overloaded: load 8 > 2 x mean 3/);
});

test('the session table forgets idle sessions and the least recently used past its capacity', () => {
  let now = 0;
  const sessions = new SessionTable({ capacity: 2, ttlMs: 1000 }, () => now);
  sessions.remember('x', 'a');
  sessions.remember('y', 'b');
  assert.equal(sessions.workerOf('x'), 'a');
  sessions.remember('x', 'a'); // x used again: y is now the oldest
  sessions.remember('z', 'c');
  assert.equal(sessions.size, 2);
  assert.equal(sessions.workerOf('y'), null);
  now = 1500;
  assert.equal(sessions.workerOf('x'), null, 'idle past the TTL');
});

test('workers whose fits differ by noise share the pool mean; one 3x off (other hardware) keeps its own', () => {
  const policy = createPolicy('cache_aware');
  const a = worker('a', 0, { stepCost: { ...goodFit, baseMs: 2 }, numDecoding: 2 });
  const b = worker('b', 1, { stepCost: { ...goodFit, baseMs: 6, prefillMsPerToken: 0.3 }, numDecoding: 2 });
  const records = policy.decide(request(), [a, b], inputs()).candidates;
  // Pooled: base (2 + 6) / 2 = 4, decode 0.5 x 2 sequences.
  assert.deepEqual(
    records.map((r) => r.terms.decodeMs),
    [5, 5],
  );
  const slow = worker('c', 2, {
    stepCost: { ...goodFit, baseMs: 40, prefillMsPerToken: 2.5 },
    numDecoding: 2,
  });
  const withSlow = policy.decide(request(), [a, b, slow], inputs()).candidates;
  assert.equal(withSlow[2]!.terms.decodeMs, 41, 'its own fit: 40 + 0.5 x 2');
});
