// Issue 18, defect 1: the circuit breaker could lock a healthy worker out for good. A request that
// was the half-open probe and then ended on a request fault or a client abort settled nothing, so
// the probe slot stayed taken: the router routed nothing to the worker, skipped it in its health
// checks, and /health said no_workers while the worker answered Info normally. Real processes:
// one unified worker (killed -9 and restarted on its port), NATS, Redis, the router over HTTP.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createGrpcClient } from '@tandem/common';
import { freePort } from '@tandem/common/testing';
import { Worker } from '@tandem/proto';
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
const model = 'tiny-llama';

describe('a probe that ends on a client abort does not lock the worker out', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  let worker: WorkerProcess;
  let router: RouterApp;
  let port: number;

  const start = () =>
    startWorker({
      modelDir,
      workerId: 'breaker-w0',
      natsUrl: backplane.nats.url,
      redisUrl: backplane.redis.url,
      // Prefill 16 tokens a step: a long prompt waits for its first token for a while.
      extraArgs: ['--port', String(port), '--max-batch-tokens', '16', '--prefill-chunk', '16'],
    });

  before(async () => {
    backplane = await startBackplane();
    port = await freePort();
    worker = await start();
    router = await startRouter(modelDir, backplane, {
      breaker: { failureThreshold: 1, openMs: 300, successThreshold: 2 },
      maxAttempts: 1,
      // Requests are the only probes here (health checks would race them).
      healthCheckMs: 600_000,
    });
    await waitForWorkers(router, 1);
  });

  after(async () => {
    await router?.close();
    await worker?.stop();
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  test('defect 1: routing and /health come back after a probe whose client gave up', async () => {
    const complete = (body: Record<string, unknown>, signal?: AbortSignal, requestId?: string) =>
      fetch(`${router.url}/v1/completions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(requestId === undefined ? {} : { 'x-request-id': requestId }),
        },
        body: JSON.stringify({ model, max_tokens: 2, ...body }),
        ...(signal === undefined ? {} : { signal }),
      });
    assert.equal((await complete({ prompt: 'hello' })).status, 200);

    // A worker failure opens the circuit (threshold 1): the worker is gone for a moment.
    worker.child.kill('SIGKILL');
    await new Promise((resolve) => worker.child.once('exit', resolve));
    const failed = await complete({ prompt: 'hello' });
    assert.ok(failed.status >= 500, `status ${failed.status}`);
    await failed.text();
    const breaker = router.registry.get('breaker-w0')!.breaker;
    assert.notEqual(breaker.state(Date.now()), 'closed');

    // The worker is back on its port. The next request that reaches it is the half-open probe; its
    // long prompt (prefilled 16 tokens a step) keeps it without a first token until its client
    // gives up. Earlier tries may fail fast while the router's channel reconnects.
    worker = await start();
    const longPrompt = Array.from({ length: 3000 }, (_, i) => 3 + (i % 500));
    let probed = false;
    for (let i = 0; i < 100 && !probed; i++) {
      const controller = new AbortController();
      const requestId = `probe-${i}`;
      const status = complete({ prompt: longPrompt, stream: true }, controller.signal, requestId).then(
        async (response) => {
          await response.text().catch(() => '');
          return response.status;
        },
        () => 0,
      );
      await new Promise((resolve) => setTimeout(resolve, 150));
      controller.abort();
      const record = (await (await fetch(`${router.url}/debug/routing/${requestId}`)).json()) as {
        decisions?: { workerId: string | null }[];
      };
      // Routed to the worker and still without a first token when its client left.
      probed = (await status) === 0 && record.decisions?.[0]?.workerId === 'breaker-w0';
      if (!probed) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(probed, 'a request became the probe and was abandoned by its client');

    // The worker answers Info normally...
    const client = createGrpcClient(Worker, worker.grpcAddress);
    try {
      assert.equal((await client.info({}, { timeoutMs: 5000 })).workerId, 'breaker-w0');
    } finally {
      client.close();
    }
    // ...so requests must reach it again (each success a good probe until the circuit closes).
    let numOk = 0;
    const deadline = Date.now() + 20_000;
    while (numOk < 3 && Date.now() < deadline) {
      const response = await complete({ prompt: 'hello again' });
      await response.text();
      if (response.status === 200) numOk++;
      else await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(numOk, 3, 'requests reach the worker again');
    assert.equal(breaker.state(Date.now()), 'closed');
    assert.equal((await fetch(`${router.url}/health`)).status, 200);
  });
});
