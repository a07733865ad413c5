// Inter-token latency and TPOT as the router computes them from the worker's token batches.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenTimer } from '../src/token-timer.ts';

function recorder() {
  const values: number[] = [];
  return { values, histogram: { observe: (value: number) => values.push(value) } };
}

test('a batch of k tokens t after the previous one is k gaps of t/k; TPOT spans first to last token', () => {
  const itl = recorder();
  const tpot = recorder();
  const timer = new TokenTimer({ itl: itl.histogram, tpot: tpot.histogram });
  timer.onTokens(0, 1, 1000); // choice 0: first token (TTFT is the dispatcher's)
  timer.onTokens(1, 2, 1005); // choice 1: two tokens at once, the first batch: no gap
  timer.onTokens(0, 1, 1010);
  timer.onTokens(0, 0, 1015); // a finish without tokens
  timer.onTokens(0, 4, 1050);
  timer.onTokens(1, 1, 1025);
  timer.finish();
  assert.deepEqual(itl.values, [0.01, 0.01, 0.01, 0.01, 0.01, 0.02]);
  // choice 0: 6 tokens from 1000 to 1050 ms; choice 1: 3 tokens from 1005 to 1025 ms.
  assert.deepEqual(tpot.values, [0.01, 0.01]);
});

test('a choice with a single token has no TPOT', () => {
  const tpot = recorder();
  const timer = new TokenTimer({ itl: recorder().histogram, tpot: tpot.histogram });
  timer.onTokens(0, 1, 5);
  timer.finish();
  assert.deepEqual(tpot.values, []);
});
