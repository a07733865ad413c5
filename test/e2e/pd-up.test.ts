// `tandem up` in its default, disaggregated layout (1 prefill + 1 decode worker): the openai client
// is served through the decode worker, whose prompt the prefill worker the router named computes;
// SIGTERM stops everything it started. `--disagg-threshold` reaches the router.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { connectRedis } from '@tandem/common';
import { canConnect, freePort, startRedisServer } from '@tandem/common/testing';
import OpenAI from 'openai';
import { fixturesDir, repoRoot } from './router-cluster.ts';

async function startUp(extraArgs: string[]) {
  const redisServer = await startRedisServer();
  const natsPort = await freePort();
  const routerPort = await freePort();
  const child = spawn(
    join(repoRoot, 'services', 'cli', 'bin', 'tandem'),
    [
      'up',
      '--model',
      join(fixturesDir, 'tiny-llama'),
      '--port',
      String(routerPort),
      '--nats',
      `nats://127.0.0.1:${natsPort}`,
      '--redis',
      redisServer.url,
      '--log-level',
      'info',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return { redisServer, natsPort, routerPort, child };
}

test('tandem up (default: --prefill 1 --decode 1) serves through both workers and stops on SIGTERM', async () => {
  const { redisServer, natsPort, routerPort, child } = await startUp([]);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const redis = await connectRedis({ url: redisServer.url, name: 'pd-up-test' });
  try {
    const lines = createInterface({ input: child.stdout! });
    const upLine = await new Promise<string>((resolve, reject) => {
      lines.on('line', (line) => {
        if (line.startsWith('tandem is up:')) resolve(line);
      });
      child.once('exit', (code) => reject(new Error(`tandem up exited (${code}): ${stderr}`)));
    });
    assert.match(upLine, /1 decode worker, 1 prefill worker/);
    const client = new OpenAI({
      baseURL: `http://127.0.0.1:${routerPort}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
    });
    const completion = await client.completions.create(
      {
        model: 'tiny-llama',
        prompt: 'def fibonacci(n): return the nth number',
        max_tokens: 4,
      },
      { headers: { 'x-request-id': 'pd-up-default' } },
    );
    assert.equal(completion.usage!.completion_tokens, 4);
    const routing = (await (
      await fetch(`http://127.0.0.1:${routerPort}/debug/routing/pd-up-default`)
    ).json()) as {
      decisions: { prefill: { type: string; threshold: number } | null }[];
    };
    assert.equal(routing.decisions[0]!.prefill!.type, 'remote', 'the router named the prefill worker');
    assert.equal(routing.decisions[0]!.prefill!.threshold, 0);
    const deadline = Date.now() + 2000;
    while (!stderr.includes('"remote prefill done"') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(stderr.includes('"remote prefill done"'), 'the prefill worker computed the prompt');
    assert.equal((await redis.keys('tandem:worker:*')).length, 2);

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, stderr);
    assert.deepEqual(await redis.keys('tandem:worker:*'), []);
    assert.equal(await canConnect('127.0.0.1', natsPort), false);
    assert.equal(await canConnect('127.0.0.1', routerPort), false);
  } finally {
    clearTimeout(killer);
    if (child.exitCode === null) child.kill('SIGKILL');
    redis.disconnect();
    await redisServer.stop();
  }
});

test('tandem up --disagg-threshold N: the router has the decode worker prefill short prompts locally', async () => {
  const { redisServer, routerPort, child } = await startUp(['--disagg-threshold', '100000']);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    const lines = createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => {
        if (line.startsWith('tandem is up:')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`tandem up exited (${code}): ${stderr}`)));
    });
    const client = new OpenAI({
      baseURL: `http://127.0.0.1:${routerPort}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
    });
    const completion = await client.completions.create(
      { model: 'tiny-llama', prompt: 'def fibonacci(n): return the nth number', max_tokens: 4 },
      { headers: { 'x-request-id': 'pd-up-local' } },
    );
    assert.equal(completion.usage!.completion_tokens, 4);
    const routing = (await (
      await fetch(`http://127.0.0.1:${routerPort}/debug/routing/pd-up-local`)
    ).json()) as {
      decisions: { prefill: { type: string; threshold: number; candidates: unknown[] } | null }[];
    };
    const prefill = routing.decisions[0]!.prefill!;
    assert.equal(prefill.type, 'local');
    assert.equal(prefill.threshold, 100000);
    assert.equal(prefill.candidates.length, 1, 'the router knew the prefill worker');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(!stderr.includes('"remote prefill done"'), 'no prefill worker computed the prompt');
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, stderr);
  } finally {
    clearTimeout(killer);
    if (child.exitCode === null) child.kill('SIGKILL');
    await redisServer.stop();
  }
});
