import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResourceExhaustedError } from '@tandem/common';
import { AdmissionQueue, defaultAdmissionParams, requestCost } from '../src/cluster/admission.ts';
import { CircuitBreaker } from '../src/cluster/circuit-breaker.ts';
import { DecisionLog } from '../src/cluster/decision-log.ts';
import { renderError } from '../src/openai/errors.ts';

test('admission runs up to maxConcurrent, queues FIFO up to maxQueued, then refuses with Retry-After', async () => {
  const queue = new AdmissionQueue({
    ...defaultAdmissionParams,
    maxConcurrent: 2,
    maxQueued: 1,
    retryAfterMs: 2500,
  });
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
  const queue = new AdmissionQueue({
    ...defaultAdmissionParams,
    maxConcurrent: 1,
    maxQueued: 4,
    retryAfterMs: 1000,
  });
  const release = await queue.admit(new AbortController().signal);
  const leaving = new AbortController();
  const waiting = queue.admit(leaving.signal);
  leaving.abort(new Error('gone'));
  await assert.rejects(waiting, /gone/);
  assert.equal(queue.numQueued, 0);
  release();
  assert.equal(queue.numRunning, 0);
});

test('admission by cost: requests run while their cost fits; a costlier one runs alone; FIFO', async () => {
  const queue = new AdmissionQueue({ ...defaultAdmissionParams, maxRunningCost: 1000 });
  const signal = new AbortController().signal;
  const a = await queue.admit(signal, 600);
  const order: string[] = [];
  const b = queue.admit(signal, 600).then((release) => {
    order.push('b');
    return release;
  });
  // FIFO: a cheap request behind a waiting costly one waits too.
  const c = queue.admit(signal, 10).then((release) => {
    order.push('c');
    return release;
  });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, []);
  assert.equal(queue.runningCost, 600);
  a();
  const releaseB = await b;
  const releaseC = await c;
  assert.deepEqual(order, ['b', 'c']);
  assert.equal(queue.runningCost, 610);
  releaseB();
  releaseC();
  // Costlier than the whole budget: runs, but alone.
  const huge = await queue.admit(signal, 5000);
  let small = false;
  const next = queue.admit(signal, 1).then((release) => {
    small = true;
    return release;
  });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(small, false);
  huge();
  (await next)();
  assert.equal(queue.numRunning, 0);
  assert.equal(queue.runningCost, 0);
  assert.equal(
    requestCost({ numPromptTokens: 100, n: 16, maxTokens: 1000, numLogprobEntries: 21 }),
    100 + 16 * 1000 * 22,
  );
});

test('a queued request gives up at its deadline with 503 queue_timeout', async () => {
  const queue = new AdmissionQueue({ ...defaultAdmissionParams, maxConcurrent: 1, queueTimeoutMs: 50 });
  const signal = new AbortController().signal;
  const release = await queue.admit(signal);
  await assert.rejects(queue.admit(signal), (error: unknown) => {
    const rendered = renderError(error);
    assert.equal(rendered.status, 503);
    assert.equal(rendered.body.error.code, 'queue_timeout');
    assert.equal(rendered.retryAfterS, 1);
    return true;
  });
  assert.equal(queue.numQueued, 0);
  release();
  assert.equal(queue.numRunning, 0);
});

test('the circuit opens after consecutive failures, lets one probe through later, and closes after several good probes', () => {
  const breaker = new CircuitBreaker({ failureThreshold: 2, openMs: 1000, successThreshold: 2 });
  breaker.onAttempt(0).failure(0);
  assert.equal(breaker.state(0), 'closed');
  breaker.onAttempt(10).failure(10);
  assert.equal(breaker.state(10), 'open');
  assert.equal(breaker.allows(500), false);
  assert.equal(breaker.state(1010), 'half_open');
  assert.equal(breaker.allows(1010), true);
  const probe = breaker.onAttempt(1010);
  assert.equal(probe.isProbe, true);
  assert.equal(breaker.allows(1011), false); // one probe at a time
  probe.failure(1020); // the probe failed: open again
  assert.equal(breaker.state(1500), 'open');
  const first = breaker.onAttempt(2020);
  first.success();
  assert.equal(breaker.state(2021), 'half_open', 'one good probe is not enough');
  first.failure(2022); // settled already: ignored
  assert.equal(breaker.state(2022), 'half_open');
  breaker.onAttempt(2030).success();
  assert.equal(breaker.state(2031), 'closed');
});

test('a probe that ends neutral (a request fault, a client that left) frees the probe slot', () => {
  const breaker = new CircuitBreaker({ failureThreshold: 1, openMs: 100, successThreshold: 1 });
  breaker.onAttempt(0).failure(0);
  const probe = breaker.onAttempt(100);
  assert.equal(breaker.allows(101), false);
  probe.neutral();
  assert.equal(breaker.allows(102), true, 'the next request may probe');
  assert.equal(breaker.state(102), 'half_open', 'a neutral end judges nothing');
  // A probe slot whose holder never settles is taken back eventually.
  breaker.onAttempt(200);
  assert.equal(breaker.allows(201), false);
  assert.equal(breaker.allows(200 + 120_000), true);
});

test('a request that started before the circuit opened does not close it by succeeding', () => {
  const breaker = new CircuitBreaker({ failureThreshold: 1, openMs: 100, successThreshold: 1 });
  const early = breaker.onAttempt(0);
  breaker.onAttempt(1).failure(1);
  early.success();
  assert.equal(breaker.state(2), 'open');
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
    reason: 'first' as const,
  });
  log.add(record('a', 1));
  log.add(record('a', 2));
  log.add(record('b', 1));
  log.add(record('c', 1));
  assert.equal(log.get('a'), null);
  assert.equal(log.get('b')!.length, 1);
  assert.equal(log.size, 2);
});
