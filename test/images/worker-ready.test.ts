// The worker pods' readiness probe (deploy/images/worker-ready.ts) against a real Redis that
// requires a password: the URL may come from --redis or, as the chart passes it when NATS and
// Redis credentials come from a Secret, from the worker's own $REDIS_URL.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { connectRedis } from '@tandem/common';
import { startRedisServer, type TestRedisServer } from '@tandem/common/testing';
import { leaseKey, main } from '../../deploy/images/worker-ready.ts';

let redis: TestRedisServer;
let grpcPort: Server;
let port: number;

before(async () => {
  redis = await startRedisServer({ password: 'p@ss/word' });
  const client = await connectRedis({ url: redis.url, name: 'worker-ready-test' });
  await client.set(leaseKey('w-ready'), '{}');
  client.disconnect();
  // Stands for the worker's gRPC port: the probe only connects to it.
  grpcPort = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => grpcPort.listen(0, '127.0.0.1', resolve));
  port = (grpcPort.address() as { port: number }).port;
});

after(async () => {
  grpcPort?.close();
  await redis?.stop();
});

test('the Redis URL (with credentials) from $REDIS_URL: ready with a lease, not ready without one', async () => {
  assert.equal(await main(['--port', String(port)], { REDIS_URL: redis.url, POD_NAME: 'w-ready' }), 0);
  assert.equal(await main(['--port', String(port)], { REDIS_URL: redis.url, POD_NAME: 'w-other' }), 1);
});

test('--redis wins over $REDIS_URL; a wrong password is not ready; no URL at all is a usage error', async () => {
  const wrong = redis.url.replace(encodeURIComponent('p@ss/word'), 'nope');
  const env = { REDIS_URL: wrong, POD_NAME: 'w-ready' };
  assert.equal(await main(['--port', String(port), '--redis', redis.url], env), 0);
  assert.equal(await main(['--port', String(port)], env), 1);
  assert.equal(await main(['--port', String(port)], { POD_NAME: 'w-ready' }), 2);
});
