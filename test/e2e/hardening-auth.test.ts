// Client API keys (issue 18, defect 6: no authentication anywhere), against two router replicas
// that share one Redis, one worker process, through the official openai client:
// - no key or a wrong key: 401 in OpenAI's shape (invalid_api_key);
// - a key over its requests per minute, tokens per minute or requests at once: 429 with
//   Retry-After, the budget shared by both replicas;
// - /metrics and /debug/* need an admin key; /health stays open.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Logger } from '@tandem/common';
import { type RouterApp, routerOptions, routerOptionsFrom } from '@tandem/router';
import OpenAI from 'openai';
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
const extras = (body: Record<string, unknown>) => body as Record<string, never>;

async function failure(call: Promise<unknown>) {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof OpenAI.APIError, String(error));
    return {
      status: error.status,
      code: error.code ?? null,
      type: error.type ?? null,
      param: error.param ?? null,
      retryAfter: error.headers?.get('retry-after') ?? null,
    };
  }
  assert.fail('expected the call to fail');
}

describe('API keys with limits shared by two router replicas', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  let worker: WorkerProcess;
  let replicas: RouterApp[] = [];
  const keyFile = join(mkdtempSync(join(tmpdir(), 'tandem-keys-')), 'keys.txt');

  before(async () => {
    writeFileSync(
      keyFile,
      ['# client keys for the test', 'sk-rpm rpm=3', 'sk-tpm tpm=60', 'sk-one concurrency=1', 'sk-free'].join(
        '\n',
      ),
    );
    backplane = await startBackplane();
    worker = await startWorker({
      modelDir,
      workerId: 'auth-w0',
      natsUrl: backplane.nats.url,
      redisUrl: backplane.redis.url,
    });
    // The replicas' options as `tandem router` parses them (key file, admin key from the environment).
    const values = routerOptions.parse(['--model', modelDir, '--api-key-file', keyFile], {
      TANDEM_ADMIN_KEYS: 'admin-1',
    });
    const parsed = routerOptionsFrom(values, new Logger({ level: 'warn' }));
    replicas = await Promise.all(
      [0, 1].map((i) =>
        startRouter(modelDir, backplane, {
          apiKeys: parsed.apiKeys,
          adminKeys: parsed.adminKeys,
          adminAccess: parsed.adminAccess,
          replicaId: `auth-r${i}`,
        }),
      ),
    );
    for (const replica of replicas) await waitForWorkers(replica, 1);
  });

  after(async () => {
    await Promise.all(replicas.map((replica) => replica.close()));
    await worker?.stop();
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  const client = (replica: RouterApp, apiKey: string) =>
    new OpenAI({ baseURL: `${replica.url}/v1`, apiKey, maxRetries: 0 });
  const small = { model, prompt: 'hi', max_tokens: 2 };

  test('no key or a wrong key: 401 invalid_api_key in OpenAI shape', async () => {
    const raw = await fetch(`${replicas[0]!.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(small),
    });
    assert.equal(raw.status, 401);
    const body = (await raw.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error.code, 'invalid_api_key');
    assert.equal(body.error.type, 'invalid_request_error');
    assert.equal(body.error.param, null);
    for (const replica of replicas) {
      const wrong = await failure(client(replica, 'sk-nope').completions.create(small));
      assert.equal(wrong.status, 401);
      assert.equal(wrong.code, 'invalid_api_key');
      const models = await failure(client(replica, 'sk-nope').models.list());
      assert.equal(models.status, 401);
    }
    const ok = await client(replicas[1]!, 'sk-free').completions.create(small);
    assert.equal(ok.choices.length, 1);
  });

  test('a key over its requests per minute gets 429 with Retry-After on either replica', async () => {
    // rpm=3 across both replicas: two on one, one on the other, then neither.
    await client(replicas[0]!, 'sk-rpm').completions.create(small);
    await client(replicas[1]!, 'sk-rpm').completions.create(small);
    await client(replicas[0]!, 'sk-rpm').completions.create(small);
    for (const replica of replicas) {
      const limited = await failure(client(replica, 'sk-rpm').completions.create(small));
      assert.equal(limited.status, 429);
      assert.equal(limited.code, 'rate_limit_exceeded');
      assert.ok(Number(limited.retryAfter) >= 1, `Retry-After ${limited.retryAfter}`);
    }
    // Another key is not affected.
    await client(replicas[1]!, 'sk-free').completions.create(small);
  });

  test('a key over its tokens per minute gets 429; one larger than its budget a 400', async () => {
    // Each request is charged 1 prompt token + 2 + 20 max_tokens, refunded what it did not generate.
    const spend = { model, prompt: [1, 5, 9], max_tokens: 20, ...extras({ ignore_eos: true }) };
    await client(replicas[0]!, 'sk-tpm').completions.create(spend); // ~23 of 60
    await client(replicas[1]!, 'sk-tpm').completions.create(spend); // ~46 of 60
    const limited = await failure(client(replicas[0]!, 'sk-tpm').completions.create(spend));
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.retryAfter) >= 1);
    const tooLarge = await failure(
      client(replicas[1]!, 'sk-tpm').completions.create({ ...spend, max_tokens: 100 }),
    );
    assert.equal(tooLarge.status, 400);
    assert.equal(tooLarge.param, 'max_tokens');
  });

  test('a key at its concurrency cap gets 429 on the other replica until its request ends', async () => {
    // Earlier tests picked workers on this replica too: wait for a pick newer than those.
    const lastPick = () => Math.max(0, ...replicas[0]!.registry.all().map((w) => w.lastPickedSeq));
    const picksBefore = lastPick();
    const long = client(replicas[0]!, 'sk-one').completions.create({
      model,
      prompt: 'long',
      max_tokens: 3000,
      ...extras({ ignore_eos: true }),
    });
    await waitFor('the long request to run', () => lastPick() > picksBefore);
    const limited = await failure(client(replicas[1]!, 'sk-one').completions.create(small));
    assert.equal(limited.status, 429);
    assert.equal(limited.retryAfter, '1');
    await long;
    const after = await client(replicas[1]!, 'sk-one').completions.create(small);
    assert.equal(after.choices.length, 1);
  });

  test('/metrics and /debug need an admin key; /health stays open', async () => {
    const url = replicas[0]!.url;
    assert.equal((await fetch(`${url}/health`)).status, 200);
    assert.equal((await fetch(`${url}/metrics`)).status, 401);
    assert.equal((await fetch(`${url}/debug/routing/x`)).status, 401);
    // The process list (every worker's address) and its Prometheus form too.
    assert.equal((await fetch(`${url}/debug`)).status, 401);
    assert.equal((await fetch(`${url}/debug/targets`)).status, 401);
    const clientKey = { authorization: 'Bearer sk-free' };
    assert.equal(
      (await fetch(`${url}/metrics`, { headers: clientKey })).status,
      401,
      'a client key is not an admin key',
    );
    const admin = { authorization: 'Bearer admin-1' };
    const metrics = await fetch(`${url}/metrics`, { headers: admin });
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /tandem_router_requests_total/);
    assert.equal((await fetch(`${url}/debug/routing/none`, { headers: admin })).status, 404);
    assert.equal((await fetch(`${url}/debug`, { headers: admin })).status, 200);
  });
});

test('--api-key is repeatable and also comes from $TANDEM_API_KEYS and --api-key-file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-keys-'));
  writeFileSync(join(dir, 'keys'), 'sk-file rpm=10 tpm=1000 concurrency=2\n# comment\n\nsk-file-2\n');
  const logger = new Logger({ level: 'warn' });
  const fromFlags = routerOptionsFrom(
    routerOptions.parse(
      [
        '--model',
        'm',
        '--api-key',
        'sk-a',
        '--api-key',
        'sk-b',
        '--api-key-file',
        join(dir, 'keys'),
        '--key-rpm',
        '5',
      ],
      {},
    ),
    logger,
  );
  assert.deepEqual(
    fromFlags.apiKeys.map((k) => [
      k.key,
      k.limits.requestsPerMinute,
      k.limits.tokensPerMinute,
      k.limits.maxConcurrent,
    ]),
    [
      ['sk-a', 5, 0, 0],
      ['sk-b', 5, 0, 0],
      ['sk-file', 10, 1000, 2],
      ['sk-file-2', 5, 0, 0],
    ],
  );
  assert.equal(fromFlags.adminAccess, 'key');
  const fromEnv = routerOptionsFrom(
    routerOptions.parse(['--model', 'm'], { TANDEM_API_KEYS: 'sk-x, sk-y' }),
    logger,
  );
  assert.deepEqual(
    fromEnv.apiKeys.map((k) => k.key),
    ['sk-x', 'sk-y'],
  );
  const open = routerOptionsFrom(routerOptions.parse(['--model', 'm'], {}), logger);
  assert.deepEqual(open.apiKeys, []);
  assert.equal(open.adminAccess, 'open');
  writeFileSync(join(dir, 'bad'), 'sk-bad rpm=lots\n');
  assert.throws(
    () =>
      routerOptionsFrom(
        routerOptions.parse(['--model', 'm', '--api-key-file', join(dir, 'bad')], {}),
        logger,
      ),
    /line 1/,
  );
});
