// Issue 18, defect 7 (the smaller ones), each reproduced with real processes:
// - error bodies exposed internal worker addresses;
// - a mid-stream error was counted as a 503 in metrics though the client got a 200;
// - retries had no backoff;
// - admission counted requests, not their cost;
// - a queued request had no deadline;
// - slow-body connections stayed open (past 95 s).
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { seededRandom } from '@tandem/common';
import { defaultRouterOptions, type RouterApp } from '@tandem/router';
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

/** The sum of a series' samples whose labels include `labels` (in any order; others allowed). */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const body = match[3] ?? '';
    if (Object.entries(labels).every(([key, value]) => body.includes(`${key}="${value}"`)))
      sum += Number(match[4]);
  }
  return sum;
}

async function metricsOf(router: RouterApp): Promise<string> {
  return (await fetch(`${router.url}/metrics`)).text();
}

function complete(router: RouterApp, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return fetch(`${router.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, ...body }),
  });
}

describe('a worker that dies: what the client sees and what the router counts', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  let worker: WorkerProcess;
  let router: RouterApp;
  let retrying: RouterApp;
  const backoff = { retryBackoffMs: 300, seed: 2 };

  before(async () => {
    backplane = await startBackplane();
    worker = await startWorker({
      modelDir,
      workerId: 'limits-w0',
      natsUrl: backplane.nats.url,
      redisUrl: backplane.redis.url,
    });
    router = await startRouter(modelDir, backplane, {
      maxAttempts: 1,
      resilience: { ...defaultRouterOptions.resilience, maxFailovers: 0 },
    });
    retrying = await startRouter(modelDir, backplane, {
      maxAttempts: 3,
      seed: backoff.seed,
      breaker: { ...defaultRouterOptions.breaker, failureThreshold: 10 },
      resilience: {
        ...defaultRouterOptions.resilience,
        retryBackoffMs: backoff.retryBackoffMs,
        retryBackoffMaxMs: 10_000,
      },
    });
    await waitForWorkers(router, 1);
    await waitForWorkers(retrying, 1);
  });

  after(async () => {
    await router?.close();
    await retrying?.close();
    await worker?.stop();
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  test('defect 7: a mid-stream error is counted as the 200 the client got, and as a stream error', async () => {
    const response = await complete(router, {
      prompt: 'a long story',
      max_tokens: 3000,
      stream: true,
      ignore_eos: true,
    });
    assert.equal(response.status, 200);
    const reader = response.body!.getReader();
    await reader.read();
    worker.child.kill('SIGKILL');
    let text = '';
    const decoder = new TextDecoder();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      text += decoder.decode(chunk.value);
    }
    assert.match(text, /"error"/, 'the error arrived inside the stream');
    const metrics = await metricsOf(router);
    assert.equal(
      metric(metrics, 'tandem_router_requests_total', { route: 'POST /v1/completions', status: '503' }),
      0,
    );
    assert.equal(
      metric(metrics, 'tandem_router_requests_total', { route: 'POST /v1/completions', status: '500' }),
      0,
    );
    assert.equal(
      metric(metrics, 'tandem_router_requests_total', { route: 'POST /v1/completions', status: '200' }),
      1,
    );
    assert.equal(metric(metrics, 'tandem_router_stream_errors_total'), 1);
    // The error event names no internal address either.
    assert.doesNotMatch(text, /127\.0\.0\.1|:\d{4,5}\b/);
  });

  test('defect 7: an error body names no internal worker address', async () => {
    const response = await complete(router, { prompt: 'hello', max_tokens: 2 });
    assert.ok(response.status >= 500, `status ${response.status}`);
    const body = (await response.json()) as { error: { message: string; code: string } };
    assert.doesNotMatch(body.error.message, /127\.0\.0\.1|:\d{4,5}\b/, body.error.message);
    assert.doesNotMatch(body.error.message, new RegExp(worker.grpcAddress.replace(/\./g, '\\.')));
    assert.ok(body.error.code.length > 0);
  });

  test('defect 7: retries back off with full jitter', async () => {
    const requestId = 'limits-backoff';
    const response = await complete(
      retrying,
      { prompt: 'hello', max_tokens: 2 },
      { 'x-request-id': requestId },
    );
    assert.ok(response.status >= 500);
    await response.text();
    const record = (await (await fetch(`${retrying.url}/debug/routing/${requestId}`)).json()) as {
      decisions: { atMs: number; reason: string }[];
    };
    assert.deepEqual(
      record.decisions.map((d) => d.reason),
      ['first', 'retry', 'retry'],
    );
    // The router's draws (cache_aware draws nothing else): failure k waits [0, base x 2^(k-1)).
    const random = seededRandom(backoff.seed);
    const waits = [1, 2].map((k) => Math.floor(random() * backoff.retryBackoffMs * 2 ** (k - 1)));
    for (const [k, waitMs] of waits.entries()) {
      const gapMs = record.decisions[k + 1]!.atMs - record.decisions[k]!.atMs;
      assert.ok(gapMs >= waitMs, `retry ${k + 1} came ${gapMs} ms after, its backoff was ${waitMs} ms`);
      assert.ok(gapMs < waitMs + 1000, `retry ${k + 1} came ${gapMs} ms after (backoff ${waitMs} ms)`);
    }
    assert.ok(
      waits.every((waitMs) => waitMs > 100),
      `the seed draws long backoffs: ${waits}`,
    );
  });
});

describe('admission by cost, queue deadline, slow bodies', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  let workers: WorkerProcess[] = [];
  const routers: RouterApp[] = [];

  before(async () => {
    backplane = await startBackplane();
    workers = await Promise.all(
      [0, 1].map((i) =>
        startWorker({
          modelDir,
          workerId: `cost-w${i}`,
          natsUrl: backplane.nats.url,
          redisUrl: backplane.redis.url,
        }),
      ),
    );
  });

  after(async () => {
    await Promise.all(routers.map((router) => router.close()));
    await Promise.all(workers.map((worker) => worker.stop()));
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  const routerWith = async (
    admission: Partial<typeof defaultRouterOptions.admission>,
    bodyTimeoutMs?: number,
  ) => {
    const router = await startRouter(modelDir, backplane, {
      admission: { ...defaultRouterOptions.admission, ...admission },
      ...(bodyTimeoutMs === undefined ? {} : { bodyTimeoutMs }),
    });
    routers.push(router);
    await waitForWorkers(router, 2);
    return router;
  };

  test('defect 7: admission counts what requests cost, not how many they are', async () => {
    // One n = 16 x 200-token request with logprobs = 20 costs 16 x 200 x 22 = 70,400 (+ prompt).
    const router = await routerWith({ maxRunningCost: 100_000 });
    let maxRunning = 0;
    let maxCost = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const metrics = await metricsOf(router);
        maxRunning = Math.max(maxRunning, metric(metrics, 'tandem_router_requests_running'));
        maxCost = Math.max(maxCost, metric(metrics, 'tandem_router_requests_running_cost'));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const costly = { prompt: 'tell me', n: 16, max_tokens: 200, logprobs: 20, ignore_eos: true };
    const responses = await Promise.all([0, 1, 2, 3].map(() => complete(router, costly)));
    for (const response of responses) {
      assert.equal(response.status, 200);
      const body = (await response.json()) as { choices: unknown[] };
      assert.equal(body.choices.length, 16);
    }
    sampling = false;
    await sampler;
    // Before: all four ran at once (4 of 256 slots).
    assert.equal(maxRunning, 1, 'the costly requests ran one at a time');
    assert.ok(maxCost <= 100_000, `running cost ${maxCost}`);
  });

  test('defect 7: a queued request gives up at its deadline with 503 queue_timeout', async () => {
    const router = await routerWith({ maxConcurrent: 1, queueTimeoutMs: 500 });
    const long = complete(router, { prompt: 'long', max_tokens: 3000, ignore_eos: true });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const startedAt = performance.now();
    const queued = await complete(router, { prompt: 'short', max_tokens: 2 });
    const waitedMs = performance.now() - startedAt;
    assert.equal(queued.status, 503);
    assert.equal(queued.headers.get('retry-after'), '1');
    const body = (await queued.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'queue_timeout');
    let longDone = false;
    void long.then(() => {
      longDone = true;
    });
    assert.equal(longDone, false, 'the queued request did not wait for the running one');
    assert.ok(waitedMs >= 450, `waited ${waitedMs.toFixed(0)} ms`);
    assert.equal((await long).status, 200);
  });

  test('defect 7: a connection that trickles its body is cut off', async () => {
    const router = await routerWith({}, 1000);
    const socket = connect(router.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = '';
    socket.on('data', (data) => {
      received += data.toString();
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(
      `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`,
    );
    const startedAt = performance.now();
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(' ');
    }, 100);
    const cutOff = await Promise.race([
      closed.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000)),
    ]);
    clearInterval(trickle);
    socket.destroy();
    assert.ok(cutOff, 'the router closed the connection');
    assert.ok(performance.now() - startedAt < 5000);
    assert.match(received, /^HTTP\/1\.1 408/);
  });
});
