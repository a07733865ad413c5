// Per-key limits without Redis (one replica's own buckets; the shared Redis buckets are covered
// by test/e2e/hardening-auth.test.ts on two replicas), and the key table.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Logger } from '@tandem/common';
import { ApiKeyTable, bearerKey, parseKeyFile, unlimitedKey } from '../src/auth/api-keys.ts';
import { KeyLimitError, KeyLimiter } from '../src/auth/key-limiter.ts';
import { InvalidRequestError } from '../src/errors.ts';
import { renderError } from '../src/openai/errors.ts';

const logger = new Logger({ level: 'error' });

function limiter(): KeyLimiter {
  return new KeyLimiter(null, { replicaId: 'r', slotLeaseMs: 60_000 }, logger);
}

test('requests per minute: the bucket empties, then 429 with the time until a request fits', async () => {
  const keys = limiter();
  const key = { id: 'k', limits: { ...unlimitedKey, requestsPerMinute: 2 } };
  await keys.acquire(key, 10);
  await keys.acquire(key, 10);
  await assert.rejects(keys.acquire(key, 10), (error: unknown) => {
    assert.ok(error instanceof KeyLimitError);
    const rendered = renderError(error);
    assert.equal(rendered.status, 429);
    assert.equal(rendered.body.error.code, 'rate_limit_exceeded');
    // A token every 30 s at 2 per minute.
    assert.ok(rendered.retryAfterS !== null && rendered.retryAfterS >= 29 && rendered.retryAfterS <= 30);
    return true;
  });
});

test('tokens per minute: charged up front, refunded what was not used; too large alone is a 400', async () => {
  const keys = limiter();
  const key = { id: 'k', limits: { ...unlimitedKey, tokensPerMinute: 100 } };
  const first = await keys.acquire(key, 80);
  await assert.rejects(keys.acquire(key, 30), KeyLimitError);
  first.release(20); // used 20 of 80: 60 come back
  const second = await keys.acquire(key, 70);
  second.release(70);
  await assert.rejects(keys.acquire(key, 101), (error: unknown) => {
    assert.ok(error instanceof InvalidRequestError);
    assert.equal(error.param, 'max_tokens');
    return true;
  });
});

test('requests at once: a slot per running request, freed when it ends (once)', async () => {
  const keys = limiter();
  const key = { id: 'k', limits: { ...unlimitedKey, maxConcurrent: 1 } };
  const running = await keys.acquire(key, 1);
  await assert.rejects(keys.acquire(key, 1), KeyLimitError);
  running.release(1);
  running.release(1);
  const next = await keys.acquire(key, 1);
  await assert.rejects(keys.acquire(key, 1), KeyLimitError);
  next.release(1);
});

test('local state is bounded: keys idle for a minute with nothing running are forgotten', async () => {
  let nowMs = 1_000_000;
  const keys = new KeyLimiter(null, { replicaId: 'r', slotLeaseMs: 3_600_000, clock: () => nowMs }, logger);
  const limits = { ...unlimitedKey, requestsPerMinute: 1000, maxConcurrent: 4 };
  // 10,000 keys, each used once a second apart: only the last minute's keys stay.
  for (let i = 0; i < 10_000; i++) {
    nowMs += 1000;
    const grant = await keys.acquire({ id: `key${i}`, limits }, 1);
    grant.release(1);
  }
  assert.ok(keys.numLocalKeys <= 61 + 1024, `${keys.numLocalKeys} keys kept`);
  assert.equal(keys.numLocalRunning, 0);
  // A key with a request still running (its slot not lapsed) is kept while idle.
  const held = await keys.acquire({ id: 'held', limits }, 1);
  for (let i = 0; i < 2048; i++) {
    nowMs += 1000;
    (await keys.acquire({ id: `later${i}`, limits }, 1)).release(1);
  }
  assert.equal(keys.numLocalRunning, 1);
  held.release(1);
  assert.equal(keys.numLocalRunning, 0);
});

test('keys are looked up by digest; bearer headers and key files parse', () => {
  const table = new ApiKeyTable(
    parseKeyFile('sk-a rpm=5\n# comment\n  sk-b  concurrency=2 tpm=9 \n', unlimitedKey),
  );
  assert.equal(table.size, 2);
  assert.equal(table.lookup('sk-a')?.limits.requestsPerMinute, 5);
  assert.deepEqual(table.lookup('sk-b')?.limits, {
    requestsPerMinute: 0,
    tokensPerMinute: 9,
    maxConcurrent: 2,
  });
  assert.equal(table.lookup('sk-c'), null);
  assert.match(table.lookup('sk-a')!.id, /^[0-9a-f]{16}$/);
  assert.equal(bearerKey('Bearer sk-a'), 'sk-a');
  assert.equal(bearerKey('bearer   sk-a  '), 'sk-a');
  assert.equal(bearerKey('Basic abc'), null);
  assert.equal(bearerKey(undefined), null);
  assert.throws(() => parseKeyFile('sk rpm=x', unlimitedKey), /line 1/);
});
