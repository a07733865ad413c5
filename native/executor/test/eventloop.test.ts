// A forward runs off the JS thread: timers keep firing while a long prefill computes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Executor } from '../src/index.ts';
import { loadDemo, pageRange, seqInput } from './helpers.ts';

test('the event loop keeps ticking during a forward', async () => {
  const demo = loadDemo();
  await using ex = await Executor.open({ modelDir: demo.dir, pageSize: 16, numPages: 128 });
  const numTokens = 2000;
  const tokenIds = Int32Array.from({ length: numTokens }, (_, i) => (i * 37 + 11) % ex.info.vocabSize);
  let ticks = 0;
  const timer = setInterval(() => {
    ticks++;
  }, 2);
  const started = performance.now();
  try {
    const [out] = await ex.forward([seqInput({ tokenIds, pageTable: pageRange(0, 125) })]);
    assert.equal(out?.samples.length, 1);
  } finally {
    clearInterval(timer);
  }
  const elapsedMs = performance.now() - started;
  assert.ok(elapsedMs > 40, `the forward took only ${elapsedMs} ms: too short to show anything`);
  // A blocked loop would tick at most once; a free one about every 2 ms.
  assert.ok(ticks >= elapsedMs / 20, `${ticks} ticks in ${elapsedMs.toFixed(0)} ms`);
});
