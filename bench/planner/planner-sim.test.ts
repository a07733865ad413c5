// The planner bench's parts: the fit to the measured GPU timings, the simulated cluster's
// bookkeeping and monotonicity, the early stop of sweep runs, and the planner's own loop
// driving the simulated cluster through a burst.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fitDecode, fitPrefill, readMeasured } from './fit.ts';
import { benchPlannerConfig, measuredFile, runPlanner, runStatic, simOptions, slo } from './run.ts';
import { defaultTraceOptions, makeTrace } from './trace.ts';

const measured = readMeasured(measuredFile);
const options = simOptions(measured);
// Ten minutes after a two-minute warm-up: an answer-heavy burst, then a prompt-heavy one.
const traceOptions = { ...defaultTraceOptions, seed: 3, warmupS: 120, durationS: 600, meanBurstGapS: 300 };
const { requests, bursts } = makeTrace(traceOptions);
const window = { fromS: traceOptions.warmupS, toS: traceOptions.warmupS + traceOptions.durationS };

test('the worker model fits the measured H200 timings (decode within 15%, prefill within 2%)', () => {
  assert.equal(measured.device, 'NVIDIA H200');
  assert.ok(measured.decode.length >= 9 && measured.prefill.length >= 5);
  const decode = fitDecode(measured.decode);
  const prefill = fitPrefill(measured.prefill);
  assert.ok(decode.report.maxAbsRelError < 0.15, JSON.stringify(decode.report));
  assert.ok(prefill.report.maxAbsRelError < 0.02, JSON.stringify(prefill.report));
  // Longer contexts cost more per step; each term is positive.
  assert.ok(decode.model.a > 0 && decode.model.c > 0);
});

test('the trace is seeded and bursty', () => {
  assert.deepEqual(makeTrace(traceOptions).requests.slice(0, 3), requests.slice(0, 3));
  assert.ok(bursts.length >= 1, 'at least one burst');
  const inBurst = (t: number) => bursts.some((b) => t >= b.startS + b.rampS && t < b.endS - b.rampS);
  const perS = (pick: (t: number) => boolean) => {
    const chosen = requests.filter((r) => r.arrivalS >= window.fromS && pick(r.arrivalS)).length;
    let seconds = 0;
    for (let t = window.fromS; t < window.toS; t++) if (pick(t)) seconds++;
    return chosen / Math.max(1, seconds);
  };
  assert.ok(perS(inBurst) > 2 * perS((t) => !bursts.some((b) => t >= b.startS && t < b.endS)));
});

test('a static cluster finishes every request; more replicas never make a p90 worse', async () => {
  const small = await runStatic(options, requests, window, 8, 5);
  const moreDecode = await runStatic(options, requests, window, 8, 8);
  const morePrefill = await runStatic(options, requests, window, 12, 5);
  for (const run of [small, moreDecode, morePrefill]) {
    assert.equal(run.result.unfinished, 0);
    assert.equal(run.result.completed, requests.filter((r) => r.arrivalS >= window.fromS).length);
    assert.ok(
      Math.abs(run.result.replicaHours.total - ((run.prefill + run.decode) * traceOptions.durationS) / 3600) <
        1e-9,
    );
  }
  assert.ok(moreDecode.result.itlP90S <= small.result.itlP90S);
  assert.ok(morePrefill.result.ttftP90S <= small.result.ttftP90S);
});

test('a sweep run stops once more than 10% of first tokens missed the SLO', async () => {
  const tiny = await runStatic(options, requests, window, 1, 1);
  assert.equal(tiny.result.stoppedOnMiss, true);
  assert.equal(tiny.meetsSlo, false);
});

test("the planner's own loop moves each pool with its kind of burst, then back down", async () => {
  // seed 3: an answer-heavy burst (decode's), then a prompt-heavy one (prefill's)
  const answerHeavy = bursts.find((b) => b.kind === 'answer-heavy');
  const promptHeavy = bursts.find((b) => b.kind === 'prompt-heavy');
  assert.ok(answerHeavy && promptHeavy && answerHeavy.endS < promptHeavy.startS);
  const { result, decisions } = await runPlanner(options, requests, window, benchPlannerConfig(measured));
  const at = (t: number) => result.timeline.find(([s]) => s + window.fromS >= t) ?? [0, 0, 0];
  const [, prefillBefore, decodeBefore] = at(answerHeavy.startS);
  const [, , decodeInAnswers] = at(answerHeavy.endS - 30);
  const [, prefillBetween, decodeBetween] = at(promptHeavy.startS - 5);
  const [, prefillInPrompts] = at(promptHeavy.startS + 75);
  assert.ok(
    decodeInAnswers > decodeBefore,
    `decode ${decodeBefore} -> ${decodeInAnswers} in the answer-heavy burst`,
  );
  assert.ok(decodeBetween < decodeInAnswers, `decode back down to ${decodeBetween} after it`);
  assert.ok(
    prefillInPrompts > prefillBetween,
    `prefill ${prefillBetween} -> ${prefillInPrompts} in the prompt-heavy burst`,
  );
  assert.ok(prefillBetween <= prefillBefore + 1, 'the answer-heavy burst barely moves prefill');
  for (const reason of ['prefill_load', 'decode_load']) {
    assert.ok(
      Object.keys(decisions).some((k) => k.includes(`reason="${reason}"`)),
      JSON.stringify(decisions),
    );
  }
  assert.ok(Object.keys(decisions).some((k) => k.includes('direction="down"')));
  assert.equal(result.unfinished, 0);
});

test('through an answer-heavy burst (seed 1) the planner holds both p90s', async () => {
  const options1 = { ...traceOptions, seed: 1 };
  const trace1 = makeTrace(options1);
  assert.deepEqual(
    trace1.bursts.map((b) => b.kind),
    ['answer-heavy'],
  );
  const { result } = await runPlanner(options, trace1.requests, window, benchPlannerConfig(measured));
  assert.equal(result.unfinished, 0);
  assert.ok(result.ttftP90S <= slo.ttftP90S, `TTFT p90 ${result.ttftP90S}`);
  assert.ok(result.itlP90S <= slo.itlP90S, `ITL p90 ${result.itlP90S}`);
});
