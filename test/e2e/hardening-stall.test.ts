// Issue 18, defect 5: a stalled (not dead) worker (SIGSTOP) made requests wait 30 s for their
// first byte: the only timeout was the 30 s prefill lease, the router kept naming the worker until
// 10 s of silent heartbeats, there was no first-byte deadline, no hedge and no transfer-progress
// check. Real processes, each mechanism on its own:
// - the decode worker's transfer-progress check (router hedging off): a prefill worker that lands
//   no KV and does not answer a health check is replaced within seconds;
// - the router stops naming a prefill worker whose load reports stopped;
// - the router's hedge: a stopped unified worker's requests get a twin on the other worker.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RouterApp } from '@tandem/router';
import {
  fixturesDir,
  startBackplane,
  startRouter,
  startWorker,
  type WorkerProcess,
  waitFor,
  waitForWorkers,
} from './router-cluster.ts';

const modelDir = join(fixturesDir, 'tiny-llama');
const model = 'tiny-llama';

function promptOf(length: number, seed: number): number[] {
  return Array.from({ length }, (_, i) => 10 + ((i * 7919 + seed * 104729) % 480));
}

interface PrefillRecord {
  type: string;
  workerId?: string;
}

/** Completes a prompt; returns how long the first byte took and the routing records. */
async function timedCompletion(router: RouterApp, requestId: string, prompt: number[]) {
  const startedAt = performance.now();
  const response = await fetch(`${router.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify({ model, prompt, max_tokens: 2, temperature: 0, stream: true }),
  });
  const reader = response.body!.getReader();
  const first = await reader.read();
  const firstByteMs = performance.now() - startedAt;
  assert.equal(first.done, false);
  while (!(await reader.read()).done) {}
  assert.equal(response.status, 200);
  const record = (await (await fetch(`${router.url}/debug/routing/${requestId}`)).json()) as {
    decisions: { workerId: string | null; reason: string; prefill: PrefillRecord | null }[];
  };
  return { firstByteMs, decisions: record.decisions };
}

describe('a stalled worker does not hold requests for 30 s', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  let started: WorkerProcess[] = [];
  let routers: RouterApp[] = [];

  before(async () => {
    backplane = await startBackplane();
  });

  const stopCluster = async () => {
    for (const worker of started) worker.child.kill('SIGCONT');
    await Promise.all(routers.map((router) => router.close()));
    await Promise.all(started.map((worker) => worker.stop()));
    started = [];
    routers = [];
  };

  after(async () => {
    await stopCluster();
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  const start = async (workerId: string, role: string, extraArgs: string[] = []) => {
    const worker = await startWorker({
      modelDir,
      workerId,
      natsUrl: backplane.nats.url,
      redisUrl: backplane.redis.url,
      extraArgs: ['--role', role, '--num-pages', '256', ...extraArgs],
    });
    started.push(worker);
    return worker;
  };

  test('defect 5: a stopped prefill worker is replaced within seconds, then no longer named', async () => {
    // D first: it sees both prefill workers join. Its prefill lease stays at the 30 s default.
    await start('stall-d', 'decode', ['--disagg-threshold', '0']);
    const [p0] = await Promise.all([start('stall-p0', 'prefill'), start('stall-p1', 'prefill')]);
    // Hedging off: the decode worker's own check must do it.
    const router = await startRouter(modelDir, backplane, {
      disaggThreshold: 0,
      resilience: {
        retryBackoffMs: 50,
        retryBackoffMaxMs: 1000,
        firstByteTimeoutMs: 60_000,
        hedgeAfterMs: 0,
        suspectAfterMs: 3500,
        maxFailovers: 3,
      },
    });
    routers.push(router);
    await waitForWorkers(router, 1);
    await waitFor('both prefill workers', () => router.registry.prefillWorkers().length === 2, 15_000);
    // Warm both prefill workers' connections.
    for (let i = 0; i < 4; i++) await timedCompletion(router, `stall-warm-${i}`, promptOf(64, i));

    p0!.child.kill('SIGSTOP');
    const stoppedAt = performance.now();
    // Right away: the router still names P0 for some of these (it cannot know yet).
    let namedStopped = 0;
    for (let i = 0; i < 4; i++) {
      const { firstByteMs, decisions } = await timedCompletion(router, `stall-a-${i}`, promptOf(96, 100 + i));
      if (decisions[0]!.prefill?.workerId === 'stall-p0') namedStopped++;
      // Before: 30 s (the prefill lease) for every request named to P0.
      assert.ok(firstByteMs < 10_000, `request ${i}: first byte after ${firstByteMs.toFixed(0)} ms`);
    }
    assert.ok(namedStopped > 0, 'some requests were named to the stopped worker (the check was exercised)');

    // Past the suspect period, the router names only the live prefill worker.
    const waitMs = 4000 - (performance.now() - stoppedAt);
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    for (let i = 0; i < 4; i++) {
      const { firstByteMs, decisions } = await timedCompletion(router, `stall-b-${i}`, promptOf(96, 200 + i));
      assert.equal(decisions[0]!.prefill?.workerId, 'stall-p1', `request ${i} names the live worker`);
      assert.ok(firstByteMs < 5000, `request ${i}: first byte after ${firstByteMs.toFixed(0)} ms`);
    }
    await stopCluster();
  });

  test("defect 5: a stopped unified worker's requests are hedged to the other", async () => {
    const [u0] = await Promise.all([start('stall-u0', 'unified'), start('stall-u1', 'unified')]);
    const router = await startRouter(modelDir, backplane, { policy: 'round_robin' });
    routers.push(router);
    await waitForWorkers(router, 2);
    for (let i = 0; i < 2; i++) await timedCompletion(router, `stall-uwarm-${i}`, promptOf(32, i));
    u0!.child.kill('SIGSTOP');
    let hedged = 0;
    for (let i = 0; i < 4; i++) {
      const { firstByteMs, decisions } = await timedCompletion(router, `stall-u-${i}`, promptOf(48, 300 + i));
      if (decisions.some((d) => d.reason === 'hedge')) hedged++;
      // The hedge fires at 2 s (+ 2x the predicted prefill): far below any lease.
      assert.ok(firstByteMs < 10_000, `request ${i}: first byte after ${firstByteMs.toFixed(0)} ms`);
    }
    assert.ok(hedged > 0, 'requests routed to the stopped worker were hedged');
    await stopCluster();
  });
});
