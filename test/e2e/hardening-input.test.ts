// Hostile input the router must refuse at its door (issue 18, defects 2-4), against a real cluster:
// 2 unified worker processes of tiny-llama, NATS, Redis, the router over HTTP.
// - defect 2: token ids >= 2^32 (or >= the vocabulary) were a 500 (the router's own protobuf
//   encoding failed) counted as a worker failure and retried: two such requests opened every breaker;
// - defect 3: a malformed percent-escape in a path was a 500;
// - defect 4: the router tokenized a whole 10 MB prompt on its event loop before the length check,
//   stalling every other client for seconds.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import type { RouterApp } from '@tandem/router';
import { TextTokenizer } from '@tandem/tokenizer';
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
/** tiny-llama's vocabulary. */
const vocabSize = 512;

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function post(router: RouterApp, path: string, body: unknown) {
  const response = await fetch(`${router.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as ErrorBody & Record<string, unknown> };
}

function metricValue(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.split(' ').at(-1));
  return sum;
}

describe('hostile input is refused at the router', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  let workers: WorkerProcess[] = [];
  let router: RouterApp;

  before(async () => {
    backplane = await startBackplane();
    workers = await Promise.all(
      [0, 1].map((i) =>
        startWorker({
          modelDir,
          workerId: `input-w${i}`,
          natsUrl: backplane.nats.url,
          redisUrl: backplane.redis.url,
        }),
      ),
    );
    router = await startRouter(modelDir, backplane);
    await waitForWorkers(router, 2);
  });

  after(async () => {
    await router?.close();
    await Promise.all(workers.map((worker) => worker.stop()));
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  test('defect 2: token ids >= 2^32 or >= the vocabulary are a 400 naming the field; no breaker opens', async () => {
    const huge = 2 ** 32;
    const cases: [string, unknown, string][] = [
      ['/v1/completions', { model, prompt: [1, 2, huge], max_tokens: 2 }, 'prompt.2'],
      ['/v1/completions', { model, prompt: [1, vocabSize], max_tokens: 2 }, 'prompt.1'],
      [
        '/v1/completions',
        {
          model,
          prompt: [
            [1, 2],
            [3, huge],
          ],
          max_tokens: 2,
        },
        'prompt.1.1',
      ],
      ['/v1/completions', { model, prompt: 'hi', stop_token_ids: [huge], max_tokens: 2 }, 'stop_token_ids.0'],
      [
        '/v1/completions',
        { model, prompt: 'hi', stop_token_ids: [vocabSize], max_tokens: 2 },
        'stop_token_ids.0',
      ],
      ['/v1/completions', { model, prompt: 'hi', logit_bias: { [huge]: 5 }, max_tokens: 2 }, 'logit_bias'],
      [
        '/v1/completions',
        { model, prompt: 'hi', logit_bias: { [vocabSize]: 5 }, max_tokens: 2 },
        'logit_bias',
      ],
      [
        '/v1/chat/completions',
        { model, messages: [{ role: 'user', content: 'hi' }], logit_bias: { '99999999999': 1 } },
        'logit_bias',
      ],
    ];
    // Twice over: before the fix two of these opened every breaker.
    for (let round = 0; round < 2; round++) {
      for (const [path, body, param] of cases) {
        const { status, body: error } = await post(router, path, body);
        assert.equal(status, 400, `${JSON.stringify(body)}: ${JSON.stringify(error)}`);
        assert.equal(error.error.type, 'invalid_request_error');
        assert.equal(error.error.param, param);
      }
    }
    for (const worker of router.registry.all()) {
      assert.equal(worker.breaker.state(Date.now()), 'closed', `${worker.workerId}'s breaker`);
      assert.equal(worker.breaker.numConsecutiveFailures, 0);
    }
    const health = await fetch(`${router.url}/health`);
    assert.equal(health.status, 200);
    const metrics = await (await fetch(`${router.url}/metrics`)).text();
    assert.equal(metricValue(metrics, 'tandem_router_retries_total{'), 0, 'nothing was retried');
    const ok = await post(router, '/v1/completions', { model, prompt: [1, vocabSize - 1], max_tokens: 2 });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  test('defect 3: malformed percent-escapes and unparsable targets in a path are a 4xx, not a 500', async () => {
    for (const path of [
      '/v1/models/%E0%A4%A',
      '/debug/routing/%E0%A4%A',
      '/v1/models/%',
      '/debug/routing/%zz',
    ]) {
      const response = await fetch(`${router.url}${path}`);
      assert.equal(response.status, 400, path);
      const body = (await response.json()) as ErrorBody;
      assert.equal(body.error.type, 'invalid_request_error', path);
    }
    // A request target node:http accepts but WHATWG URL does not parse.
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: router.port, path: 'http://[::1/v1/models' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.ok(status === 400 || status === 404, `status ${status}`);
    assert.equal((await fetch(`${router.url}/health`)).status, 200);
  });

  test('defect 4: a 10 MB prompt is refused without stalling other clients', async () => {
    const tenMb = 'lorem ipsum dolor sit amet '.repeat(400_000);
    assert.ok(tenMb.length >= 10_000_000);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const started = performance.now();
    const big = [
      post(router, '/v1/completions', { model, prompt: tenMb, max_tokens: 2 }),
      post(router, '/v1/completions', { model, prompt: tenMb, max_tokens: 2 }),
      post(router, '/v1/chat/completions', { model, messages: [{ role: 'user', content: tenMb }] }),
      post(router, '/v1/completions', { model, prompt: [tenMb.slice(0, 1000), tenMb], max_tokens: 2 }),
    ];
    // Another client's small request meanwhile.
    const small = await post(router, '/v1/completions', { model, prompt: 'hi', max_tokens: 2 });
    assert.equal(small.status, 200);
    for (const result of await Promise.all(big)) {
      assert.equal(result.status, 400);
      assert.equal(result.body.error.code, 'context_length_exceeded');
    }
    delay.disable();
    const maxStallMs = delay.max / 1e6;
    // Before: one such prompt blocked the event loop for ~6 s, four for ~20 s. What is left is
    // reading and parsing four 10 MB bodies (JSON.parse runs on the loop): ~0.3 s idle, more on
    // a loaded machine.
    assert.ok(maxStallMs < 2500, `the event loop stalled for ${maxStallMs.toFixed(0)} ms`);
    assert.ok(performance.now() - started < 10_000);
  });

  test('defect 4: a long prompt below the bound is tokenized off the event loop', async () => {
    // Just below the size the router refuses untokenized (2 x context x longest token): it must
    // be tokenized to know that it does not fit.
    const long = 'the quick brown fox jumps over the lazy dog '.repeat(2900);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const results = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        post(router, '/v1/completions', { model, prompt: `${i} ${long}`, max_tokens: 2 }),
      ),
    );
    delay.disable();
    for (const result of results) {
      assert.equal(result.status, 400);
      assert.equal(result.body.error.code, 'context_length_exceeded');
      assert.equal(result.body.error.param, 'prompt');
    }
    const fits = 'the quick brown fox '.repeat(300);
    const ok = await post(router, '/v1/completions', { model, prompt: fits, max_tokens: 2 });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    // The bound is what tokenizing one of these prompts on this event loop costs, measured now
    // (so a loaded machine moves both): ~800 ms on a CI core. Four on the loop stalled it longer.
    const tokenizer = await TextTokenizer.load(modelDir);
    const onLoopStarted = performance.now();
    tokenizer.encode(`4 ${long}`);
    const onLoopMs = performance.now() - onLoopStarted;
    const stallMs = delay.max / 1e6;
    assert.ok(
      stallMs < onLoopMs * 0.75,
      `the event loop stalled for ${stallMs.toFixed(0)} ms; one prompt tokenized on it takes ${onLoopMs.toFixed(0)} ms`,
    );
  });
});
