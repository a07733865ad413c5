// The full fuzz run as a command (bench/fuzz/README.md): its own NATS and Redis, two unified
// worker processes of a checkpoint, a router; then N hostile requests (default 10,000); the
// report goes to stdout and, with --out, to a JSON file. Exit code 1 when any check failed.
//
//   node bench/fuzz/run.ts [--requests 10000] [--seed 18] [--concurrency 16] [--model DIR] [--out FILE]
import { writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Logger } from '@tandem/common';
import { startNatsServer, startRedisServer } from '@tandem/common/testing';
import { defaultRouterOptions, RouterApp } from '@tandem/router';
import { startWorkerProcess } from '@tandem/worker/testing';
import { runFuzz } from './fuzz.ts';

const repoRoot = join(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '18' },
    concurrency: { type: 'string', default: '16' },
    model: { type: 'string', default: join(repoRoot, 'test', 'fixtures', 'tiny-llama') },
    out: { type: 'string' },
  },
});
const modelDir = resolve(values.model);
const maxBodyBytes = 2 * 1024 * 1024;
const config = JSON.parse(
  await import('node:fs/promises').then((fs) => fs.readFile(join(modelDir, 'config.json'), 'utf8')),
) as { vocab_size: number };

const [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
const workers = await Promise.all(
  [0, 1].map((i) =>
    startWorkerProcess([
      ...['--model', modelDir, '--nats', nats.url, '--redis', redis.url, '--worker-id', `fuzz-w${i}`],
      ...['--threads', '1', '--log-level', 'error'],
    ]),
  ),
);
const router = await RouterApp.start({
  ...defaultRouterOptions,
  models: [{ dir: modelDir, servedName: null }],
  port: 0,
  natsUrl: nats.url,
  redisUrl: redis.url,
  maxBodyBytes,
  logger: new Logger({ level: 'error', fields: { service: 'router' } }),
});
let exitCode = 1;
try {
  const deadline = Date.now() + 30_000;
  while (router.registry.size < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const report = await runFuzz({
    baseUrl: router.url,
    model: basename(modelDir),
    vocabSize: config.vocab_size,
    maxBodyBytes,
    seed: Number(values.seed),
    numRequests: Number(values.requests),
    concurrency: Number(values.concurrency),
    validEvery: 20,
  });
  const alive = workers.every((worker) => worker.child.exitCode === null);
  const healthy = (await fetch(`${router.url}/health`)).status === 200;
  const result = {
    date: new Date().toISOString(),
    model: basename(modelDir),
    seed: Number(values.seed),
    workersAlive: alive,
    routerHealthy: healthy,
    ...report,
    elapsedMs: Math.round(report.elapsedMs),
    requestsPerSecond: Math.round((report.numRequests / report.elapsedMs) * 1000),
  };
  const text = JSON.stringify(result, null, 2);
  process.stdout.write(`${text}\n`);
  if (values.out !== undefined) writeFileSync(values.out, `${text}\n`);
  const passed =
    alive &&
    healthy &&
    report.num5xx === 0 &&
    report.numBadShape === 0 &&
    report.numWrongParam === 0 &&
    report.numValidOk === report.numValid;
  exitCode = passed ? 0 : 1;
} finally {
  await router.close();
  await Promise.all(workers.map((worker) => worker.stop(5000)));
  await nats.stop();
  await redis.stop();
}
process.exit(exitCode);
