// Shared in-flight counts on a real redis-server (started on a free port).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connectRedis, Logger, type Redis } from '@tandem/common';
import { startRedisServer, type TestRedisServer } from '@tandem/common/testing';
import { InflightCounts } from '../src/cluster/inflight.ts';

const logger = new Logger({ level: 'error' });
let server: TestRedisServer;
const clients: Redis[] = [];

before(async () => {
  server = await startRedisServer();
});

after(async () => {
  for (const client of clients) client.disconnect();
  await server?.stop();
});

async function replica(replicaId: string, replicaTtlMs = 10_000): Promise<InflightCounts> {
  const redis = await connectRedis({ url: server.url, name: replicaId });
  clients.push(redis);
  return new InflightCounts(redis, { replicaId, replicaTtlMs, refreshMs: 60_000 }, logger);
}

test('replicas see each other in-flight counts; a silent replica expires with its counts', async () => {
  const one = await replica('one');
  const two = await replica('two', 1000);
  two.acquire('w1');
  two.acquire('w1');
  await two.settled();
  one.acquire('w2');
  await one.settled();
  assert.equal(one.count('w1'), 2);
  assert.equal(one.count('w2'), 1);
  assert.equal(one.localCount('w1'), 0);
  one.release('w2');
  await one.settled();
  two.release('w1');
  await two.settled();
  assert.equal(two.count('w2'), 0);
  assert.equal(two.count('w1'), 1);
  one.acquire('w3'); // refreshes one's view
  await one.settled();
  assert.equal(one.count('w1'), 1);
  // Replica two stops talking: after its TTL its remaining request no longer counts.
  await new Promise((resolve) => setTimeout(resolve, 1200));
  one.release('w3');
  await one.settled();
  assert.equal(one.count('w1'), 0);
  await one.stop();
  await two.stop();
});

test('counts are absolute: a lost write is repaired by the periodic refresh', async () => {
  const redis = await connectRedis({ url: server.url, name: 'repair-one' });
  clients.push(redis);
  const one = new InflightCounts(
    redis,
    { replicaId: 'repair-one', replicaTtlMs: 10_000, refreshMs: 100 },
    logger,
  );
  const two = await replica('repair-two');
  one.acquire('w1');
  await one.settled();
  // Lose our hash, as if a write had never arrived.
  await redis.del('tandem:inflight:repair-one');
  two.acquire('w2');
  await two.settled();
  assert.equal(two.count('w1'), 0);
  one.start();
  await new Promise((resolve) => setTimeout(resolve, 300));
  two.release('w2');
  await two.settled();
  assert.equal(two.count('w1'), 1);
  await one.stop();
  await two.stop();
});

/** Script calls this Redis has run (EVALSHA, and EVAL when the script was not cached yet). */
async function scriptCalls(redis: Redis): Promise<number> {
  const stats = await redis.info('commandstats');
  let calls = 0;
  for (const match of stats.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)) calls += Number(match[1]);
  return calls;
}

test('changes share one script call; a request that starts and ends in the window costs none', async () => {
  const one = await replica('coalesce-one');
  const probe = await connectRedis({ url: server.url, name: 'coalesce-probe' });
  clients.push(probe);
  one.acquire('warm');
  await one.settled();
  const before = await scriptCalls(probe);
  for (let i = 0; i < 100; i++) {
    one.acquire('w1');
    one.release('w1');
  }
  await one.settled();
  assert.equal(await scriptCalls(probe), before);
  for (let i = 0; i < 10; i++) one.acquire(`w${i}`);
  await one.settled();
  assert.equal(await scriptCalls(probe), before + 1);
  const two = await replica('coalesce-two');
  two.acquire('w0');
  await two.settled();
  assert.equal(two.count('w5'), 1);
  assert.equal(two.count('w0'), 2);
  await one.stop();
  await two.stop();
});
