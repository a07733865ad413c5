// The events plane against a real NATS server and a real worker process: subscribers rebuild the
// worker's cached block set exactly (compared with dumps) through evictions in a tiny pool, a
// late subscriber and a dropped batch are detected by sequence number and repaired from a dump,
// and the worker announces itself, holds a Redis lease, reports load (with its fitted step costs)
// and leaves on SIGTERM.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type BlockDump,
  connectNats,
  connectRedis,
  createGrpcClient,
  type GrpcClient,
  KvEventFollower,
  type NatsConnection,
  type Redis,
  redisKeys,
  requestBlockDump,
  subjects,
} from '@tandem/common';
import {
  fixtureDir,
  startNatsServer,
  startRedisServer,
  type TestNatsServer,
  type TestRedisServer,
} from '@tandem/common/testing';
import {
  AnnounceKind,
  fromBinary,
  type KvEventBatch,
  KvEventBatchSchema,
  Worker,
  type WorkerAnnounce,
  WorkerAnnounceSchema,
  type WorkerLoad,
  WorkerLoadSchema,
} from '@tandem/proto';
import { blockHashes } from '@tandem/tokenizer';
import { generate, greedyRequest, startWorkerProcess, type WorkerProcess } from '@tandem/worker/testing';

const workerId = 'kv-test-worker';
const pageSize = 4;
const numPages = 24;

function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/** Prompts of 10-30 tokens; every other one shares a 12-token prefix (cache hits and misses). */
function makePrompts(count: number, seed: number): number[][] {
  const random = seededRandom(seed);
  const shared = Array.from({ length: 12 }, () => 3 + Math.floor(random() * 490));
  return Array.from({ length: count }, (_, i) => {
    const tail = Array.from({ length: 10 + Math.floor(random() * 20) }, () => 3 + Math.floor(random() * 490));
    return i % 2 === 0 ? [...shared, ...tail] : tail;
  });
}

function keysOf(blocks: readonly { namespace: string; hash: bigint; parentHash: bigint | null }[]): string[] {
  return blocks.map((b) => `${b.namespace}|${b.hash}|${b.parentHash}`).sort();
}

describe('KV events, dumps and membership on NATS', () => {
  let nats: TestNatsServer;
  let redisServer: TestRedisServer;
  let nc: NatsConnection;
  let redis: Redis;
  let worker: WorkerProcess;
  let client: GrpcClient<typeof Worker>;
  let follower: KvEventFollower;
  const batches: KvEventBatch[] = [];
  const announcements: WorkerAnnounce[] = [];
  const loads: WorkerLoad[] = [];
  let requestCounter = 0;

  async function runRequests(prompts: number[][], concurrency = 3): Promise<void> {
    for (let i = 0; i < prompts.length; i += concurrency) {
      await Promise.all(
        prompts
          .slice(i, i + concurrency)
          .map((prompt) => generate(client, greedyRequest(`kv-${requestCounter++}`, prompt, 6))),
      );
    }
  }

  /** The worker's dump once the follower has caught up with it (events are async). */
  async function caughtUpDump(target: KvEventFollower): Promise<BlockDump> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      await target.settled();
      const dump = await requestBlockDump(nc, workerId);
      if (target.mirror.seq === dump.seq) return dump;
      if (Date.now() > deadline) assert.fail(`follower at seq ${target.mirror.seq}, worker at ${dump.seq}`);
      await sleep(20);
    }
  }

  before(async () => {
    nats = await startNatsServer();
    redisServer = await startRedisServer();
    nc = await connectNats({ url: nats.url, name: 'kv-events-test' });
    redis = await connectRedis({ url: redisServer.url, name: 'kv-events-test' });
    nc.subscribe(subjects.kvEvents(workerId), {
      callback: (error, message) => {
        if (error === null) batches.push(fromBinary(KvEventBatchSchema, message.data));
      },
    });
    nc.subscribe(subjects.announce, {
      callback: (error, message) => {
        if (error === null) announcements.push(fromBinary(WorkerAnnounceSchema, message.data));
      },
    });
    nc.subscribe(subjects.loadAll, {
      callback: (error, message) => {
        if (error === null) loads.push(fromBinary(WorkerLoadSchema, message.data));
      },
    });
    // Subscribed before the worker starts: it sees the sequence from 1.
    follower = new KvEventFollower(nc, workerId);
    await follower.start();
    worker = await startWorkerProcess([
      '--model',
      fixtureDir('tiny-llama'),
      '--nats',
      nats.url,
      '--redis',
      redisServer.url,
      '--worker-id',
      workerId,
      '--page-size',
      String(pageSize),
      '--num-pages',
      String(numPages),
      '--threads',
      '1',
    ]);
    client = createGrpcClient(Worker, worker.grpcAddress);
  });

  after(async () => {
    follower?.stop();
    client?.close();
    if (worker !== undefined && worker.child.exitCode === null) await worker.stop();
    await nc?.close();
    redis?.disconnect();
    await nats?.stop();
    await redisServer?.stop();
  });

  test('a subscriber rebuilds the cached block set exactly through evictions', async () => {
    const prompts = makePrompts(18, 7);
    await runRequests(prompts);
    const dump = await caughtUpDump(follower);
    assert.deepEqual(follower.gaps, []);
    assert.deepEqual(keysOf(follower.mirror.blocks()), keysOf(dump.blocks));
    assert.ok(dump.blocks.length > 0 && dump.blocks.length <= numPages);

    const events = batches.flatMap((batch) => batch.events);
    const numRemoved = events
      .filter((e) => e.event.case === 'removed')
      .reduce((sum, e) => sum + (e.event.case === 'removed' ? e.event.value.hashes.length : 0), 0);
    assert.ok(numRemoved > 0, 'the tiny pool must have evicted cached blocks');
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => BigInt(i + 1)),
      'sequence numbers start at 1 and increase by one',
    );

    // The gRPC dump agrees with the NATS one.
    const grpcBlocks = [];
    for await (const chunk of client.dumpBlocks({ maxBlocksPerChunk: 5 })) {
      assert.equal(chunk.seq, dump.seq);
      grpcBlocks.push(
        ...chunk.blocks.map((b) => ({
          namespace: b.namespace,
          hash: b.hash,
          parentHash: b.parentHash ?? null,
        })),
      );
    }
    assert.deepEqual(keysOf(grpcBlocks), keysOf(dump.blocks));
    // So does a NATS dump split into many chunks.
    const chunked = await requestBlockDump(nc, workerId, { maxBlocksPerChunk: 3 });
    assert.equal(chunked.seq, dump.seq);
    assert.deepEqual(keysOf(chunked.blocks), keysOf(dump.blocks));

    // The router computes the same hashes from the prompt: the last prompt's full pages are cached.
    const last = prompts.at(-1)!;
    for (const hash of blockHashes('', last, pageSize))
      assert.ok(follower.mirror.has('', hash), `block ${hash}`);
  });

  test('a subscriber that starts mid-stream sees the gap and resyncs from a dump', async () => {
    const late = new KvEventFollower(nc, workerId);
    await late.start();
    await runRequests(makePrompts(9, 11));
    const dump = await caughtUpDump(late);
    assert.ok(late.gaps.length >= 1, 'the first batch (or load report) it saw was not seq 1');
    assert.ok(late.numResyncs >= 1);
    assert.deepEqual(keysOf(late.mirror.blocks()), keysOf(dump.blocks));
    assert.deepEqual(keysOf(follower.mirror.blocks()), keysOf(dump.blocks));
    late.stop();
  });

  test('a dropped batch is detected by sequence number and repaired', async () => {
    const lossy = new KvEventFollower(nc, workerId);
    lossy.mirror.reset(await caughtUpDump(follower));
    let numReceived = 0;
    const subscription = nc.subscribe(subjects.kvEvents(workerId), {
      callback: (error, message) => {
        if (error !== null) return;
        numReceived++;
        if (numReceived === 2) return; // lost on the way
        lossy.handle(fromBinary(KvEventBatchSchema, message.data));
      },
    });
    await nc.flush();
    await runRequests(makePrompts(9, 23), 1);
    assert.ok(numReceived >= 3, `only ${numReceived} batches`);
    const dump = await caughtUpDump(lossy);
    subscription.unsubscribe();
    const [gap] = lossy.gaps;
    assert.ok(gap !== undefined, 'the gap was noticed');
    assert.ok(gap.receivedSeq > gap.expectedSeq);
    assert.equal(gap.restarted, false);
    assert.deepEqual(keysOf(lossy.mirror.blocks()), keysOf(dump.blocks));
  });

  test('the worker announces itself, holds a lease, reports load and leaves on SIGTERM', async () => {
    const join = announcements.find((a) => a.workerId === workerId && a.kind === AnnounceKind.JOIN);
    assert.ok(join !== undefined);
    assert.equal(join.grpcAddress, worker.grpcAddress);
    assert.equal(join.modelName, 'tiny-llama');
    assert.equal(join.kvLayout?.pageSize, pageSize);
    assert.equal(join.kvLayout?.numPages, numPages);
    const lease = await redis.get(redisKeys.workerLease(workerId));
    assert.ok(lease !== null);
    assert.equal((JSON.parse(lease) as { grpcAddress: string }).grpcAddress, worker.grpcAddress);
    const ttlMs = await redis.pttl(redisKeys.workerLease(workerId));
    assert.ok(ttlMs > 0 && ttlMs <= join.leaseTtlMs, `lease TTL ${ttlMs}`);
    const deadline = Date.now() + 3000;
    while (!loads.some((l) => l.workerId === workerId) && Date.now() < deadline) await sleep(50);
    const load = loads.findLast((l) => l.workerId === workerId);
    assert.ok(load?.load !== undefined);
    assert.equal(load.load.numTotalPages, numPages);
    // After the requests above, its reports carry the step costs it fitted over its own steps.
    while (!loads.some((l) => l.load?.stepCost !== undefined) && Date.now() < deadline + 2000)
      await sleep(50);
    const fit = loads.findLast((l) => l.workerId === workerId && l.load?.stepCost !== undefined)?.load
      ?.stepCost;
    assert.ok(fit !== undefined, 'a load report with the fitted step costs');
    assert.ok(fit.numSteps >= 8 && fit.numPrefillSteps >= 1, `${fit.numSteps} steps`);
    assert.ok(Number.isFinite(fit.prefillMsPerToken) && Number.isFinite(fit.baseMs));
    assert.ok(fit.rSquared <= 1 && fit.rmseMs >= 0);

    assert.equal(await worker.stop(), 0);
    await nc.flush();
    assert.ok(announcements.some((a) => a.workerId === workerId && a.kind === AnnounceKind.LEAVE));
    assert.equal(await redis.get(redisKeys.workerLease(workerId)), null);
  });

  test('a worker restarted under the same id is a new incarnation: followers resync', async () => {
    const numGapsBefore = follower.gaps.length;
    worker = await startWorkerProcess([
      '--model',
      fixtureDir('tiny-llama'),
      '--nats',
      nats.url,
      '--worker-id',
      workerId,
      '--page-size',
      String(pageSize),
      '--num-pages',
      String(numPages),
      '--threads',
      '1',
    ]);
    client.close();
    client = createGrpcClient(Worker, worker.grpcAddress);
    await runRequests(makePrompts(3, 31));
    const dump = await caughtUpDump(follower);
    const restart = follower.gaps.slice(numGapsBefore).find((gap) => gap.restarted);
    assert.ok(restart !== undefined, 'the new incarnation was noticed');
    assert.equal(follower.mirror.startedAtMs, dump.startedAtMs);
    assert.deepEqual(keysOf(follower.mirror.blocks()), keysOf(dump.blocks));
    assert.equal(await worker.stop(), 0);
  });
});
