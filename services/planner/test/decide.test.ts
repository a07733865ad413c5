// The decision rules, tick by tick on a hand-driven clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultPlannerConfig, type PlannerConfig, validatePlannerConfig } from '../src/config.ts';
import { Planner } from '../src/decide.ts';
import { type ClusterSignals, emptySignals, type PoolName, type PoolState } from '../src/types.ts';

const config: PlannerConfig = {
  ...defaultPlannerConfig,
  sloTtftS: 1,
  sloItlS: 0.03,
  prefill: { min: 1, max: 10 },
  decode: { min: 1, max: 20 },
  prefillTokensPerReplicaS: 10_000,
  decodeProfile: [{ context: 1000, tokensPerS: 2_000 }],
  targetUtilization: 0.5,
  upCooldownS: 30,
  downCooldownS: 60,
  downStabilizationS: 100,
  settleS: 0,
  lookaheadS: 0,
  prefillBacklogDrainS: 2,
};

function state(
  p: number,
  d: number,
  terminating: Partial<Record<PoolName, number>> = {},
): Record<PoolName, PoolState> {
  return {
    prefill: { desired: p, current: p, ready: p, terminating: terminating.prefill ?? 0 },
    decode: { desired: d, current: d, ready: d, terminating: terminating.decode ?? 0 },
  };
}

function signals(s: Partial<ClusterSignals>): ClusterSignals {
  return { ...emptySignals(), ...s };
}

const calm = signals({
  ttftP90S: 0.2,
  itlP90S: 0.01,
  queueP90S: 0,
  prefillTokensPerS: 4_000, // 4000 / (10000 * 0.5) -> 1 replica
  decodeTokensPerS: 900, // 900 / (2000 * 0.5) -> 1 replica
  queuedPrefillTokens: 0,
  kvUsageSum: 0.4,
  kvUsageMax: 0.2,
  decodeRequestsWaiting: 0,
});

test('prefill grows to what its token rate plus backlog needs', () => {
  const planner = new Planner(config);
  // 23k tokens/s + 4000 queued / 2 s drain = 25k -> 25k / 5k = 5 replicas
  const out = planner.decide(
    0,
    signals({ ...calm, prefillTokensPerS: 23_000, queuedPrefillTokens: 4_000 }),
    state(2, 2),
  );
  assert.equal(out.prefill.direction, 'up');
  assert.equal(out.prefill.to, 5);
  assert.equal(out.prefill.reason, 'prefill_load');
  // 5 prefill with at most 2 per decode replica: decode follows to 3.
  assert.deepEqual([out.decode.direction, out.decode.to, out.decode.reason], ['up', 3, 'ratio']);
});

test('a slow first token with decode-side waiting grows decode, not prefill', () => {
  const planner = new Planner(config);
  const out = planner.decide(0, signals({ ...calm, ttftP90S: 2, decodeRequestsWaiting: 7 }), state(2, 4));
  assert.equal(out.prefill.direction, 'hold');
  assert.deepEqual([out.decode.direction, out.decode.to, out.decode.reason], ['up', 5, 'decode_waiting']);
  // With prompts queued on prefill (30k tokens: 0.375 s at 8 x 10k/s, over a quarter of the
  // TTFT SLO), the same TTFT grows prefill by a step (a quarter, at least one).
  const again = new Planner(config).decide(
    0,
    signals({ ...calm, ttftP90S: 2, queuedPrefillTokens: 30_000 }),
    state(8, 4),
  );
  assert.deepEqual([again.prefill.direction, again.prefill.to, again.prefill.reason], ['up', 10, 'ttft_slo']);
});

test('ITL over the threshold grows decode; the up cooldown holds the next tick', () => {
  const planner = new Planner(config);
  const out = planner.decide(0, signals({ ...calm, itlP90S: 0.05 }), state(1, 4));
  assert.deepEqual([out.decode.direction, out.decode.to, out.decode.reason], ['up', 5, 'itl_slo']);
  planner.applied(out.decode, 0);
  const next = planner.decide(10, signals({ ...calm, itlP90S: 0.05 }), state(1, 5));
  assert.deepEqual([next.decode.direction, next.decode.reason], ['hold', 'cooldown']);
  const later = planner.decide(31, signals({ ...calm, itlP90S: 0.05 }), state(1, 5));
  assert.deepEqual([later.decode.direction, later.decode.to], ['up', 7]);
});

test('KV occupancy sizes decode: the pool sum over the target, or a step when one worker is nearly full', () => {
  const planner = new Planner(config);
  const out = planner.decide(0, signals({ ...calm, kvUsageSum: 2.9, kvUsageMax: 0.75 }), state(1, 3));
  assert.deepEqual([out.decode.to, out.decode.reason], [5, 'kv_load']); // 2.9 / 0.7 -> 5
  const full = new Planner(config).decide(
    0,
    signals({ ...calm, kvUsageSum: 1.2, kvUsageMax: 0.95 }),
    state(1, 3),
  );
  assert.deepEqual([full.decode.to, full.decode.reason], [4, 'kv_usage']);
  // Waiting requests want pages too: 2.0 in use by 40 running, 20 waiting -> 3.0 / 0.7 -> 5
  const waiting = new Planner(config).decide(
    0,
    signals({
      ...calm,
      kvUsageSum: 2.0,
      kvUsageMax: 0.7,
      decodeRequestsRunning: 40,
      decodeRequestsWaiting: 20,
    }),
    state(1, 3),
  );
  assert.deepEqual([waiting.decode.to, waiting.decode.reason], [5, 'kv_load']);
});

test('the P:D ratio raises the lagging pool, and the cluster ceiling splits the GPUs by proportion', () => {
  const planner = new Planner({ ...config, ratioMin: 0.25, ratioMax: 1 });
  // decode needs 12 (11000 / 1000); prefill must then be >= 3
  const out = planner.decide(0, signals({ ...calm, decodeTokensPerS: 11_500 }), state(1, 4));
  assert.deepEqual([out.decode.to, out.decode.reason], [12, 'decode_load']);
  assert.deepEqual([out.prefill.to, out.prefill.reason], [3, 'ratio']);
  const capped = new Planner({ ...config, maxTotalReplicas: 10 }).decide(
    0,
    signals({ ...calm, prefillTokensPerS: 40_000, decodeTokensPerS: 11_500 }),
    state(2, 4),
  );
  assert.equal(capped.prefill.to + capped.decode.to, 10);
  assert.deepEqual([capped.prefill.to, capped.decode.to], [4, 6]); // 8:12 scaled to 10
  assert.equal(capped.prefill.reason, 'ceiling');
});

test('down only after the stabilization window, one step at a time, never while a pod drains', () => {
  const planner = new Planner(config);
  let out = planner.decide(0, calm, state(3, 3));
  assert.deepEqual([out.prefill.direction, out.prefill.reason], ['hold', 'stabilizing']);
  for (let t = 10; t < 100; t += 10) out = planner.decide(t, calm, state(3, 3));
  assert.equal(out.prefill.reason, 'stabilizing');
  out = planner.decide(100, calm, state(3, 3));
  assert.deepEqual([out.prefill.direction, out.prefill.to, out.prefill.reason], ['down', 2, 'idle']);
  assert.deepEqual([out.decode.direction, out.decode.to, out.decode.reason], ['down', 2, 'idle']);
  planner.applied(out.prefill, 100);
  // decode was not carried out (say the write failed): it may go on, but not while a pod drains
  const draining = planner.decide(110, calm, state(2, 3, { decode: 1 }));
  assert.deepEqual([draining.decode.direction, draining.decode.reason], ['hold', 'draining']);
  // The next step down waits out the down cooldown.
  for (let t = 120; t < 160; t += 10) {
    assert.deepEqual(
      [
        planner.decide(t, calm, state(2, 3)).prefill.direction,
        planner.decide(t, calm, state(2, 3)).prefill.reason,
      ],
      ['hold', 'cooldown'],
      `t=${t}`,
    );
  }
  const next = planner.decide(160, calm, state(2, 3));
  assert.deepEqual([next.prefill.direction, next.prefill.to], ['down', 1]);
});

test('a spike inside the window keeps the count (the highest recommendation wins)', () => {
  const planner = new Planner(config);
  planner.decide(0, calm, state(3, 3));
  planner.decide(50, signals({ ...calm, prefillTokensPerS: 14_000 }), state(3, 3)); // needs 3
  const out = planner.decide(120, calm, state(3, 3));
  assert.deepEqual([out.prefill.direction, out.prefill.reason], ['hold', 'steady']);
  const later = planner.decide(151, calm, state(3, 3));
  assert.deepEqual([later.prefill.direction, later.prefill.to], ['down', 2]);
});

test('no signals: hold, but floors apply at once', () => {
  const out = new Planner({ ...config, decode: { min: 2, max: 20 } }).decide(0, emptySignals(), state(1, 1));
  assert.deepEqual([out.prefill.direction, out.prefill.reason], ['hold', 'no_signal']);
  assert.deepEqual([out.decode.direction, out.decode.to, out.decode.reason], ['up', 2, 'floor']);
});

test('the router queueing grows the pool under more pressure', () => {
  const out = new Planner(config).decide(0, signals({ ...calm, queueP90S: 1, itlP90S: 0.024 }), state(2, 4));
  assert.deepEqual([out.decode.direction, out.decode.reason], ['up', 'admission_queue']);
  assert.equal(out.prefill.direction, 'hold');
});

test('bad configurations are rejected with the field named', () => {
  assert.throws(
    () => validatePlannerConfig({ ...config, downThreshold: 0.9 }),
    /downThreshold \(0.9\) must be below upThreshold/,
  );
  assert.throws(() => validatePlannerConfig({ ...config, prefill: { min: 3, max: 2 } }), /prefill replicas/);
  assert.throws(
    () => validatePlannerConfig({ ...config, maxTotalReplicas: 1 }),
    /maxTotalReplicas \(1\) is below the two floors/,
  );
});

test('SLO feedback waits until the pool has been ready for settleS; load-based counts do not', () => {
  const planner = new Planner({ ...config, settleS: 30 });
  const slow = signals({ ...calm, itlP90S: 0.05 });
  const starting = { ...state(1, 4), decode: { desired: 4, current: 4, ready: 2, terminating: 0 } };
  assert.deepEqual([planner.decide(0, slow, starting).decode.direction], ['hold']);
  assert.deepEqual(
    [planner.decide(15, slow, state(1, 4)).decode.direction],
    ['hold'],
    'ready, not settled yet',
  );
  const settled = planner.decide(45, slow, state(1, 4));
  assert.deepEqual([settled.decode.direction, settled.decode.reason], ['up', 'itl_slo']);
  const load = new Planner({ ...config, settleS: 30 }).decide(
    0,
    signals({ ...calm, decodeTokensPerS: 5_500 }),
    starting,
  );
  assert.deepEqual([load.decode.to, load.decode.reason], [6, 'decode_load']);
});

test('a rising load is sized for lookaheadS ahead; a falling one for now', () => {
  const planner = new Planner({ ...config, lookaheadS: 30, trendWindowS: 60 });
  // prefill demand rises 100 tokens/s per second: 30 s ahead it is 3000 more.
  for (const t of [0, 15, 30])
    planner.decide(t, signals({ ...calm, prefillTokensPerS: 10_000 + 100 * t }), state(2, 2));
  const up = planner.decide(45, signals({ ...calm, prefillTokensPerS: 14_500 }), state(2, 2));
  assert.deepEqual([up.prefill.to, up.prefill.reason], [4, 'prefill_load']); // (14500 + 3000) / 5000 -> 4
  const falling = new Planner({ ...config, lookaheadS: 30 });
  for (const t of [0, 15, 30])
    falling.decide(t, signals({ ...calm, prefillTokensPerS: 20_000 - 100 * t }), state(3, 2));
  assert.equal(
    falling.decide(45, signals({ ...calm, prefillTokensPerS: 15_500 }), state(3, 2)).prefill.to,
    4,
  );
});

test('decode capacity follows the profile at the mean context read off KV usage', () => {
  const planner = new Planner({
    ...config,
    decodeProfile: [
      { context: 500, tokensPerS: 8_000 },
      { context: 4000, tokensPerS: 1_000 },
    ],
    kvTokensPerReplica: 100_000,
  });
  // 2 replicas half full with 50 sequences: 100k tokens / 50 = 2000 tokens each
  const s = signals({ ...calm, kvUsageSum: 1.0, decodeRequestsRunning: 50, decodeTokensPerS: 9_900 });
  const capacity = planner.decodeCapacity(s); // 8000 * (1/8)^(ln 4 / ln 8) = 2000
  assert.ok(Math.abs(capacity - 2000) < 1, String(capacity));
  assert.equal(planner.decide(0, s, state(2, 2)).decode.to, 10); // 9900 / (2000 * 0.5)
});
