// What the engine tells its observers: each step's sequences and its prefill / decode tokens
// (Engine.onStep, the worker's metrics), and a request's admission with its cached prefix
// (hooks.onAdmitted, the workers' traces).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultSchedulerOptions, Engine, type StepReport } from '../src/engine.ts';
import { collect, request } from './helpers.ts';
import { ShadowExecutor } from './shadow-executor.ts';

function engine(): Engine {
  return new Engine(new ShadowExecutor({ numPages: 64, pageSize: 4 }), {
    ...defaultSchedulerOptions,
    maxPrefillChunkTokens: 8,
  });
}

test('every step is reported: prompt positions as prefill, generated ones as decode', async () => {
  const e = engine();
  const steps: StepReport[] = [];
  const stop = e.onStep((step) => steps.push(step));
  const prompt = Array.from({ length: 20 }, (_, i) => 3 + (i % 40));
  const [choice] = await collect(e.generate(request('r1', prompt, 5)));
  assert.equal(choice?.tokenIds.length, 5);
  // 20 prompt tokens in chunks of 8 (the last chunk samples the first token), then 4 decode steps.
  assert.deepEqual(
    steps.map((s) => [s.numSequences, s.numPrefillTokens, s.numDecodeTokens]),
    [
      [1, 8, 0],
      [1, 8, 0],
      [1, 4, 0],
      [1, 0, 1],
      [1, 0, 1],
      [1, 0, 1],
      [1, 0, 1],
    ],
  );
  assert.ok(steps.every((s) => s.seconds >= 0));
  stop();
  await collect(e.generate(request('r2', prompt, 2)));
  assert.equal(steps.length, 7, 'no reports after unsubscribing');
  await e.close();
});

test('onAdmitted fires once per request, at admission, with the cached prefix', async () => {
  const e = engine();
  const prompt = Array.from({ length: 17 }, (_, i) => 5 + i);
  const admitted: number[] = [];
  const first = await collect(
    e.generate(request('a', prompt, 2), undefined, { onAdmitted: (n) => admitted.push(n) }),
  );
  assert.equal(first[0]?.numCachedTokens, 0);
  // The same prompt again with n = 2: its four full pages are cached; choice 1 is not a new admission.
  const second = await collect(
    e.generate(request('b', prompt, 2, { n: 2 }), undefined, { onAdmitted: (n) => admitted.push(n) }),
  );
  assert.equal(second.length, 2);
  assert.deepEqual(admitted, [0, 16]);
  await e.close();
});

test('every listener gets every step (the metrics and the step-cost fit both listen)', async () => {
  const e = engine();
  const first: StepReport[] = [];
  const second: StepReport[] = [];
  const stopFirst = e.onStep((step) => first.push(step));
  e.onStep((step) => second.push(step));
  await collect(e.generate(request('r1', [3, 4, 5, 6, 7], 3)));
  assert.ok(first.length > 0);
  assert.deepEqual(second, first);
  stopFirst();
  await collect(e.generate(request('r2', [8, 9, 10], 2)));
  assert.ok(second.length > first.length, 'the other listener still hears');
  await e.close();
});
