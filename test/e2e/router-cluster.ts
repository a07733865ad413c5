// A real cluster for the router's end-to-end tests: nats-server and redis-server on free ports,
// unified worker processes (services/cli/bin/tandem worker) and in-process routers over HTTP.
import type { ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Logger } from '@tandem/common';
import {
  startNatsServer,
  startRedisServer,
  type TestNatsServer,
  type TestRedisServer,
} from '@tandem/common/testing';
import { defaultRouterOptions, RouterApp, type RouterOptions } from '@tandem/router';
import { startWorkerProcess } from '@tandem/worker/testing';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const fixturesDir = join(repoRoot, 'test', 'fixtures');
export const demoModelDir = join(repoRoot, 'deploy', 'models', 'tandem-demo-code');

export interface WorkerProcess {
  workerId: string;
  grpcAddress: string;
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

/** A unified worker process on the test backplane (one thread, quiet logs). */
export async function startWorker(options: {
  modelDir: string;
  workerId: string;
  natsUrl: string;
  redisUrl: string;
  extraArgs?: string[];
}): Promise<WorkerProcess> {
  const worker = await startWorkerProcess([
    '--role',
    'unified',
    '--model',
    options.modelDir,
    '--nats',
    options.natsUrl,
    '--redis',
    options.redisUrl,
    '--worker-id',
    options.workerId,
    '--threads',
    '1',
    '--log-level',
    'warn',
    ...(options.extraArgs ?? []),
  ]);
  return {
    workerId: worker.workerId,
    grpcAddress: worker.grpcAddress,
    child: worker.child,
    output: worker.logs,
    stop: async () => {
      await worker.stop(5000);
    },
  };
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

/** A router for `modelDir` (or several models: a list of folders). */
export async function startRouter(
  modelDir: string | readonly string[],
  backplane: { nats: TestNatsServer; redis: TestRedisServer },
  overrides: Partial<RouterOptions> = {},
): Promise<RouterApp> {
  return RouterApp.start({
    ...defaultRouterOptions,
    models: (typeof modelDir === 'string' ? [modelDir] : modelDir).map((dir) => ({ dir, servedName: null })),
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
