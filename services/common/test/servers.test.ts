import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectNats, connectRedis, type NatsConnection, TimeoutError } from '@tandem/common';
import { canConnect, startNatsServer, startRedisServer, waitForPort } from '@tandem/common/testing';

test('a test NATS server carries messages, survives a restart on the same port, and cleans up', async () => {
  const nats = await startNatsServer();
  const nc = await connectNats({ url: nats.url, name: 'servers-test' });
  try {
    const subscription = nc.subscribe('t.echo', { max: 1 });
    nc.publish('t.echo', 'hello');
    for await (const message of subscription) assert.equal(message.string(), 'hello');

    await nats.kill();
    assert.equal(await canConnect('127.0.0.1', nats.port), false);
    await nats.restart();
    // The client reconnects by itself and works again.
    const again = nc.subscribe('t.again', { max: 1 });
    await untilReconnected(nc);
    nc.publish('t.again', 'back');
    for await (const message of again) assert.equal(message.string(), 'back');
  } finally {
    await nc.close();
    await nats.stop();
  }
  assert.equal(await canConnect('127.0.0.1', nats.port), false);
});

async function untilReconnected(nc: NatsConnection): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await nc.flush();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

test('a test Redis server stores nothing on disk and stops', async () => {
  await using redisServer = await startRedisServer();
  const redis = await connectRedis({ url: redisServer.url, name: 'servers-test' });
  try {
    await redis.set('k', 'v', 'PX', 10_000);
    assert.equal(await redis.get('k'), 'v');
    assert.deepEqual(await redis.config('GET', 'save'), ['save', '']);
    assert.deepEqual(await redis.config('GET', 'appendonly'), ['appendonly', 'no']);
  } finally {
    redis.disconnect();
  }
});

test('waitForPort times out with a TimeoutError when nothing listens', async () => {
  const nats = await startNatsServer();
  const port = nats.port;
  await nats.stop();
  await assert.rejects(waitForPort('127.0.0.1', port, 300), TimeoutError);
});
