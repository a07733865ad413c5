// A real cluster for the router's end-to-end tests: nats-server and redis-server on free ports,
// unified worker processes (services/cli/bin/tandem worker) and in-process routers over HTTP.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Logger } from '@tandem/common';
import {
  startNatsServer,
  startRedisServer,
  type TestNatsServer,
  type TestRedisServer,
} from '@tandem/common/testing';
import { defaultRouterOptions, RouterApp, type RouterOptions } from '@tandem/router';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const fixturesDir = join(repoRoot, 'test', 'fixtures');
export const demoModelDir = join(repoRoot, 'deploy', 'models', 'tandem-demo-code');
const tandemBin = join(repoRoot, 'services', 'cli', 'bin', 'tandem');

export interface WorkerProcess {
  workerId: string;
  grpcAddress: string;
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

const liveChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

export async function startWorker(options: {
  modelDir: string;
  workerId: string;
  natsUrl: string;
  redisUrl: string;
  extraArgs?: string[];
}): Promise<WorkerProcess> {
  const args = [
    'worker',
    '--role',
    'unified',
    '--model',
    options.modelDir,
    '--port',
    '0',
    '--nats',
    options.natsUrl,
    '--redis',
    options.redisUrl,
    '--worker-id',
    options.workerId,
    '--threads',
    '1',
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(tandemBin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  liveChildren.add(child);
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const lines = createInterface({ input: child.stdout! });
  const ready = new Promise<{ grpcAddress: string }>((resolve, reject) => {
    lines.on('line', (line) => {
      output += `${line}\n`;
      try {
        const event = JSON.parse(line) as { event?: string; grpcAddress?: string };
        if (event.event === 'ready' && typeof event.grpcAddress === 'string')
          resolve({ grpcAddress: event.grpcAddress });
      } catch {
        // not a JSON line
      }
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`worker ${options.workerId} exited (${code ?? signal}) before ready:\n${output}`)),
    );
  });
  const timeout = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    const { grpcAddress } = await ready;
    return {
      workerId: options.workerId,
      grpcAddress,
      child,
      output: () => output,
      stop: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
        liveChildren.delete(child);
      },
    };
  } finally {
    clearTimeout(timeout);
  }
}

export interface Cluster {
  nats: TestNatsServer;
  redis: TestRedisServer;
  workers: WorkerProcess[];
  stop(): Promise<void>;
}

export async function startBackplane(): Promise<{ nats: TestNatsServer; redis: TestRedisServer }> {
  const [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
  return { nats, redis };
}

export async function startRouter(
  modelDir: string,
  backplane: { nats: TestNatsServer; redis: TestRedisServer },
  overrides: Partial<RouterOptions> = {},
): Promise<RouterApp> {
  return RouterApp.start({
    ...defaultRouterOptions,
    modelDir,
    port: 0,
    natsUrl: backplane.nats.url,
    redisUrl: backplane.redis.url,
    logger: new Logger({ level: 'warn', fields: { service: 'router-test' } }),
    ...overrides,
  });
}

/** Resolves once the router sees `count` workers (announcements are asynchronous). */
export async function waitForWorkers(router: RouterApp, count: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (router.registry.size < count) {
    if (Date.now() > deadline) throw new Error(`router saw ${router.registry.size} of ${count} workers`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
