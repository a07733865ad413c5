// The router under hostile input (issue 18): FUZZ_REQUESTS (default 10,000) seeded hostile requests
// (bench/fuzz/cases.ts: bad JSON, wrong types, huge and out-of-range values, bad escapes, malformed
// HTTP, huge bodies, abrupt disconnects) against a real 2-worker cluster, a valid request every
// 20th. Done when: 0 crashes (both workers and the router alive and serving), 0 5xx, every 4xx
// in OpenAI's shape naming the `param` the case knows is at fault, every valid request served.
// `node bench/fuzz/run.ts` runs the same with its own cluster and writes the report
// (bench/fuzz/README.md).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runFuzz } from '@tandem/bench/fuzz';
import type { RouterApp } from '@tandem/router';
import {
  fixturesDir,
  startBackplane,
  startRouter,
  startWorker,
  type WorkerProcess,
  waitForWorkers,
} from './router-cluster.ts';

const modelDir = join(fixturesDir, 'tiny-llama');
const numRequests = Number(process.env.FUZZ_REQUESTS ?? 10_000);
const seed = Number(process.env.FUZZ_SEED ?? 18);
/** Huge bodies exceed this (kept small so they cost little to send). */
const maxBodyBytes = 2 * 1024 * 1024;

describe(`${numRequests} hostile requests against a 2-worker cluster`, () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  let workers: WorkerProcess[] = [];
  let router: RouterApp;

  before(async () => {
    backplane = await startBackplane();
    workers = await Promise.all(
      [0, 1].map((i) =>
        startWorker({
          modelDir,
          workerId: `fuzz-w${i}`,
          natsUrl: backplane.nats.url,
          redisUrl: backplane.redis.url,
          extraArgs: ['--log-level', 'error'],
        }),
      ),
    );
    router = await startRouter(modelDir, backplane, { maxBodyBytes });
    await waitForWorkers(router, 2);
  });

  after(async () => {
    await router?.close();
    await Promise.all(workers.map((worker) => worker.stop()));
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  test('no crash, no 5xx, OpenAI-shaped 4xx naming param, every valid request served', async (t) => {
    const report = await runFuzz({
      baseUrl: router.url,
      model: 'tiny-llama',
      vocabSize: 512,
      maxBodyBytes,
      seed,
      numRequests,
      concurrency: 16,
      validEvery: 20,
    });
    const summary = JSON.stringify(
      { ...report, failures: report.failures.slice(0, 5), elapsedMs: Math.round(report.elapsedMs) },
      null,
      1,
    );
    t.diagnostic(
      `${report.numRequests} requests in ${Math.round(report.elapsedMs)} ms: ${JSON.stringify(report.byStatus)}`,
    );
    assert.equal(report.numRequests, numRequests);
    assert.equal(report.num5xx, 0, summary);
    assert.equal(report.numBadShape, 0, summary);
    assert.equal(report.numWrongParam, 0, summary);
    assert.ok(report.numValid >= Math.floor(numRequests / 20));
    assert.equal(report.numValidOk, report.numValid, summary);
    // Nothing crashed: both workers run, the router answers and still routes to both.
    for (const worker of workers) assert.equal(worker.child.exitCode, null, `${worker.workerId} exited`);
    assert.equal((await fetch(`${router.url}/health`)).status, 200);
    assert.equal(router.registry.size, 2);
    for (const worker of router.registry.all()) {
      assert.equal(worker.breaker.state(Date.now()), 'closed', `${worker.workerId}'s breaker`);
    }
  });
});
