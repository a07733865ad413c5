import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResourceExhaustedError } from '@tandem/common';
import { AdmissionQueue } from '../src/cluster/admission.ts';
import { CircuitBreaker } from '../src/cluster/circuit-breaker.ts';
import { DecisionLog } from '../src/cluster/decision-log.ts';
import { renderError } from '../src/openai/errors.ts';

test('admission runs up to maxConcurrent, queues FIFO up to maxQueued, then refuses with Retry-After', async () => {
  const queue = new AdmissionQueue({ maxConcurrent: 2, maxQueued: 1, retryAfterMs: 2500 });
  const signal = new AbortController().signal;
  const first = await queue.admit(signal);
  await queue.admit(signal);
  let thirdAdmitted = false;
  const third = queue.admit(signal).then((release) => {
    thirdAdmitted = true;
    return release;
  });
  await assert.rejects(queue.admit(signal), (error: unknown) => {
    assert.ok(error instanceof ResourceExhaustedError);
    const rendered = renderError(error);
    assert.equal(rendered.status, 429);
    assert.equal(rendered.retryAfterS, 3);
    assert.equal(rendered.body.error.code, 'rate_limit_exceeded');
    return true;
  });
  assert.equal(thirdAdmitted, false);
  first();
  first(); // releasing twice is harmless
  (await third)();
  assert.equal(queue.numQueued, 0);
  assert.equal(queue.numRunning, 1);
});

test('a queued request whose client leaves gives up its place', async () => {
  const queue = new AdmissionQueue({ maxConcurrent: 1, maxQueued: 4, retryAfterMs: 1000 });
  const release = await queue.admit(new AbortController().signal);
  const leaving = new AbortController();
  const waiting = queue.admit(leaving.signal);
  leaving.abort(new Error('gone'));
  await assert.rejects(waiting, /gone/);
  assert.equal(queue.numQueued, 0);
  release();
  assert.equal(queue.numRunning, 0);
});

test('the circuit opens after consecutive failures, lets one probe through later, and closes on success', () => {
  const breaker = new CircuitBreaker({ failureThreshold: 2, openMs: 1000 });
  breaker.onFailure(0);
  assert.equal(breaker.state(0), 'closed');
  breaker.onFailure(10);
  assert.equal(breaker.state(10), 'open');
  assert.equal(breaker.allows(500), false);
  assert.equal(breaker.state(1010), 'half_open');
  assert.equal(breaker.allows(1010), true);
  breaker.onAttempt(1010);
  assert.equal(breaker.allows(1011), false); // one probe at a time
  breaker.onFailure(1020); // the probe failed: open again
  assert.equal(breaker.state(1500), 'open');
  breaker.onSuccess();
  assert.equal(breaker.state(1500), 'closed');
});

test('the decision log keeps the last N requests with every attempt', () => {
  const log = new DecisionLog(2);
  const record = (requestId: string, attempt: number) => ({
    requestId,
    policy: 'p',
    numPromptTokens: 1,
    numPromptBlocks: 0,
    workerId: 'w',
    candidates: [],
    prefill: null,
    atMs: 0,
    attempt,
  });
  log.add(record('a', 1));
  log.add(record('a', 2));
  log.add(record('b', 1));
  log.add(record('c', 1));
  assert.equal(log.get('a'), null);
  assert.equal(log.get('b')!.length, 1);
  assert.equal(log.size, 2);
});
