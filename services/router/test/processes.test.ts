// `tandem router --processes 2`: two real router processes share the port and both serve; /metrics
// answers for both (each family once, each process's series labelled router_process); any process
// finds the routing record of a request another one served; SIGTERM stops the group cleanly.
// Real NATS, Redis, worker and router processes.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fixtureDir, freePort, repoRoot, startNatsServer, startRedisServer } from '@tandem/common/testing';

const tandem = join(repoRoot, 'services/cli/bin/tandem');

/** Resolves with the first stdout line that matches. */
function lineMatching(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (pattern.test(line)) resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`exited (${String(code)}) before ${pattern}`)));
  });
}

interface Reply {
  status: number;
  body: string;
  requestId: string;
}

/** One request on a fresh connection (so the group's processes take turns). */
function call(port: number, method: string, path: string, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: payload === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: text,
            requestId: String(res.headers['x-request-id']),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

test('--processes 2 serves from both processes, with one /metrics and /debug/routing for the group', async (t) => {
  const nats = await startNatsServer();
  const redis = await startRedisServer();
  const modelDir = fixtureDir('tiny-llama');
  const backplane = ['--nats', nats.url, '--redis', redis.url];
  const worker = spawn(
    tandem,
    ['worker', '--model', modelDir, '--port', '0', '--threads', '1', ...backplane],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, LOG_LEVEL: 'warn' },
    },
  );
  const port = await freePort();
  let router: ChildProcess | null = null;
  t.after(async () => {
    for (const child of [router, worker]) {
      if (child !== null && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
    await nats.stop();
    await redis.stop();
  });
  await lineMatching(worker, /"event":"ready"/);
  router = spawn(
    tandem,
    ['router', '--model', modelDir, '--port', String(port), '--processes', '2', ...backplane],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } },
  );
  const ready = await lineMatching(router, /serving/);
  assert.match(ready, new RegExp(`:${port}/v1 \\(2 processes\\)`));

  // Both processes must know the worker before every connection gets an answer.
  for (let healthy = 0, tries = 0; healthy < 6; tries++) {
    assert.ok(tries < 200, 'the group never became healthy');
    healthy = (await call(port, 'GET', '/health')).status === 200 ? healthy + 1 : 0;
    if (healthy === 0) await new Promise((r) => setTimeout(r, 100));
  }

  const requestIds: string[] = [];
  for (let i = 0; i < 8; i++) {
    const reply = await call(port, 'POST', '/v1/completions', {
      model: 'tiny-llama',
      prompt: 'def fibonacci(n):',
      max_tokens: 4,
      temperature: 0,
      stream: i % 2 === 0,
    });
    assert.equal(reply.status, 200, reply.body);
    if (i % 2 === 0) assert.match(reply.body, /data: \[DONE\]\n\n$/);
    else assert.equal((JSON.parse(reply.body) as { object: string }).object, 'text_completion');
    requestIds.push(reply.requestId);
  }

  const metrics = await call(port, 'GET', '/metrics');
  assert.equal(metrics.status, 200);
  const lines = metrics.body.split('\n');
  assert.equal(lines.filter((line) => line.startsWith('# TYPE tandem_router_requests_total ')).length, 1);
  for (const process of ['0', '1']) {
    const served = lines.filter(
      (line) =>
        line.startsWith('tandem_router_requests_total{') &&
        line.includes(`router_process="${process}"`) &&
        line.includes('route="POST /v1/completions"'),
    );
    const count = served.reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
    assert.ok(count > 0, `process ${process} served no completion:\n${served.join('\n')}`);
  }

  for (const requestId of requestIds) {
    const record = await call(port, 'GET', `/debug/routing/${requestId}`);
    assert.equal(record.status, 200, record.body);
    assert.equal((JSON.parse(record.body) as { request_id: string }).request_id, requestId);
  }

  router.kill('SIGTERM');
  const [code] = (await once(router, 'exit')) as [number | null];
  assert.equal(code, 0);
});
