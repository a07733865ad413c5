// `tandem router` on a port another process holds: it must say so and exit non-zero (it used to
// stay alive on its NATS / Redis connections and timers after the failed listen).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { startNatsServer, startRedisServer } from '@tandem/common/testing';
import { fixturesDir, repoRoot } from './router-cluster.ts';

test('tandem router exits 1 with a clear message when its port is taken (EADDRINUSE)', async () => {
  const [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const port = (holder.address() as { port: number }).port;
  const child = spawn(
    join(repoRoot, 'services', 'cli', 'bin', 'tandem'),
    [
      'router',
      '--model',
      join(fixturesDir, 'tiny-llama'),
      '--port',
      String(port),
      '--nats',
      nats.url,
      '--redis',
      redis.url,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    assert.equal(signal, null, `killed: the router stayed alive\n${stderr}`);
    assert.equal(code, 1);
    assert.match(stderr, new RegExp(`PortInUseError: port ${port} on 127\\.0\\.0\\.1 is already in use`));
  } finally {
    clearTimeout(killer);
    if (child.exitCode === null) child.kill('SIGKILL');
    holder.close();
    await nats.stop();
    await redis.stop();
  }
});
