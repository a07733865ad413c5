// The worker's step-cost fit (StepCostModel): it recovers the costs of steps that follow them
// exactly, reports its error on noisy ones, forgets old steps (a ring), and fits what it can when
// a regressor never varied.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StepCostModel } from '../src/step-cost.ts';

const close = (actual: number, expected: number, tolerance: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected}`);

test('steps that follow the model exactly give its costs back with R^2 = 1', () => {
  const model = new StepCostModel(64);
  assert.equal(model.fit(), null, 'no fit before enough steps');
  for (let i = 0; i < 40; i++) {
    const numPrefillTokens = (i % 5) * 100;
    const numDecodeTokens = (i * 7) % 13;
    model.record({
      numPrefillTokens,
      numDecodeTokens,
      seconds: (3 + 0.05 * numPrefillTokens + 0.4 * numDecodeTokens) / 1000,
    });
  }
  const fit = model.fit()!;
  close(fit.baseMs, 3, 1e-6, 'base');
  close(fit.prefillMsPerToken, 0.05, 1e-9, 'prefill');
  close(fit.decodeMsPerSequence, 0.4, 1e-9, 'decode');
  close(fit.rSquared, 1, 1e-9, 'R^2');
  close(fit.rmseMs, 0, 1e-6, 'rmse');
  assert.equal(fit.numSteps, 40);
  assert.equal(fit.numPrefillSteps, 32);
});

test('noise shows in the error, and the ring keeps only the latest steps', () => {
  const model = new StepCostModel(100);
  let seed = 7;
  const noise = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31 - 0.5;
  };
  // Old steps at another speed, then 100 at the current one: only those count.
  for (let i = 0; i < 100; i++)
    model.record({ numPrefillTokens: 64 * (i % 4), numDecodeTokens: 4, seconds: 1 });
  for (let i = 0; i < 100; i++) {
    const numPrefillTokens = 64 * (i % 4);
    const numDecodeTokens = i % 9;
    const ms = 2 + 0.1 * numPrefillTokens + 0.5 * numDecodeTokens + 2 * noise();
    model.record({ numPrefillTokens, numDecodeTokens, seconds: ms / 1000 });
  }
  const fit = model.fit()!;
  assert.equal(fit.numSteps, 100);
  close(fit.prefillMsPerToken, 0.1, 0.01, 'prefill');
  close(fit.decodeMsPerSequence, 0.5, 0.1, 'decode');
  assert.ok(fit.rSquared > 0.9 && fit.rSquared < 1, `R^2 ${fit.rSquared}`);
  assert.ok(fit.rmseMs > 0.2 && fit.rmseMs < 1, `rmse ${fit.rmseMs}`);
});

test('decode-only steps fit the decode cost and leave the prefill cost at 0', () => {
  const model = new StepCostModel(32);
  for (let i = 0; i < 20; i++)
    model.record({
      numPrefillTokens: 0,
      numDecodeTokens: 1 + (i % 6),
      seconds: (1 + 0.25 * (1 + (i % 6))) / 1000,
    });
  const fit = model.fit()!;
  assert.equal(fit.prefillMsPerToken, 0);
  assert.equal(fit.numPrefillSteps, 0);
  close(fit.decodeMsPerSequence, 0.25, 1e-9, 'decode');
  close(fit.baseMs, 1, 1e-9, 'base');
});
