// ensureNats / ensureRedis (what `tandem up` uses): reuse a server that answers, else start one on
// the configured port; a remote URL that does not answer is an error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ensureNats, ensureRedis, Logger, UnavailableError } from '@tandem/common';
import { canConnect, freePort, startNatsServer } from '@tandem/common/testing';

const logger = new Logger({ level: 'error' });

test('reuses a reachable NATS server', async () => {
  await using nats = await startNatsServer();
  const ensured = await ensureNats(logger, nats.url);
  assert.equal(ensured.startedHere, false);
  await ensured.stop();
  assert.equal(await canConnect('127.0.0.1', nats.port), true);
});

test('starts NATS and Redis on the configured ports when nothing answers, and stops them', async () => {
  const natsPort = await freePort();
  const redisPort = await freePort();
  const nats = await ensureNats(logger, `nats://127.0.0.1:${natsPort}`);
  const redis = await ensureRedis(logger, `redis://127.0.0.1:${redisPort}`);
  try {
    assert.equal(nats.startedHere, true);
    assert.equal(redis.startedHere, true);
    assert.equal(await canConnect('127.0.0.1', natsPort), true);
    assert.equal(await canConnect('127.0.0.1', redisPort), true);
  } finally {
    await nats.stop();
    await redis.stop();
  }
  assert.equal(await canConnect('127.0.0.1', natsPort), false);
  assert.equal(await canConnect('127.0.0.1', redisPort), false);
});

test('a remote URL that does not answer is an UnavailableError', async () => {
  await assert.rejects(ensureNats(logger, 'nats://192.0.2.1:4222'), UnavailableError);
});
