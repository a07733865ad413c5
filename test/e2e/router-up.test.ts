// `tandem up` as a user runs it: it starts NATS itself (nothing listens on the given URL), uses
// the Redis it is pointed at, brings up 2 unified workers and the router, serves the openai
// client, and on SIGTERM stops everything it started (workers drop their Redis leases, the NATS
// port closes).
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

test('tandem up serves the model and stops everything on SIGTERM', async () => {
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
      '--unified',
      '2',
      '--nats',
      `nats://127.0.0.1:${natsPort}`,
      '--redis',
      redisServer.url,
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const redis = await connectRedis({ url: redisServer.url, name: 'up-test' });
  try {
    const lines = createInterface({ input: child.stdout! });
    const url = await new Promise<string>((resolve, reject) => {
      lines.on('line', (line) => {
        const match = /tandem is up: (http:\/\/\S+)\/v1/.exec(line);
        if (match !== null) resolve(match[1]!);
      });
      child.once('exit', (code) => reject(new Error(`tandem up exited (${code}): ${stderr}`)));
    });
    assert.equal(url, `http://127.0.0.1:${routerPort}`);
    assert.equal(await canConnect('127.0.0.1', natsPort), true);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['tiny-llama'],
    );
    const completion = await client.completions.create({
      model: 'tiny-llama',
      prompt: 'hello',
      max_tokens: 4,
    });
    assert.equal(completion.usage!.completion_tokens, 4);
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
