// Latency the router adds: the same 1-token request (a) straight to a unified worker over gRPC
// with pre-tokenized ids, and (b) through a router process over HTTP (/v1/completions, JSON,
// keep-alive), interleaved so drift hits both alike. Added latency = router - direct at each
// percentile. Real NATS, Redis, worker and router processes on this machine.
//   node bench/router/latency.ts [--requests 500] [--out bench/router/results/latency.json]
//     [--router-prof DIR]   (the router's CPU profile, for finding what the added time is)
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createGrpcClient } from '@tandem/common';
import {
  fixtureDir,
  freePort,
  repoRoot,
  startNatsServer,
  startRedisServer,
  waitForPort,
} from '@tandem/common/testing';
import { Worker } from '@tandem/proto';
import { startWorkerProcess } from '@tandem/worker/testing';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '500' },
    out: { type: 'string' },
    // Writes the router process's CPU profile (node --cpu-prof) into this folder.
    'router-prof': { type: 'string' },
  },
});
const numRequests = Number(values.requests);
const modelDir = fixtureDir('tiny-llama');
const promptText = 'def fibonacci(n):';
const promptIds = [1, 200, 131, 80, 73, 108, 424, 330, 15, 85, 16, 33];

const backplane = { nats: await startNatsServer(), redis: await startRedisServer() };
const worker = await startWorkerProcess([
  '--model',
  modelDir,
  '--worker-id',
  'latency-w0',
  '--nats',
  backplane.nats.url,
  '--redis',
  backplane.redis.url,
  '--threads',
  '1',
]);
const routerPort = await freePort();
const router = spawn(
  join(repoRoot, 'services', 'cli', 'bin', 'tandem'),
  [
    'router',
    '--model',
    modelDir,
    '--port',
    String(routerPort),
    '--nats',
    backplane.nats.url,
    '--redis',
    backplane.redis.url,
  ],
  {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      ...(values['router-prof'] === undefined
        ? {}
        : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${values['router-prof']}` }),
    },
  },
);

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
function post(path: string, body: unknown): Promise<number> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: routerPort,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(performance.now() - started)
            : reject(new Error(`HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const client = createGrpcClient(Worker, worker.grpcAddress);
async function direct(i: number): Promise<number> {
  const started = performance.now();
  for await (const _ of client.generate({
    requestId: `direct-${i}`,
    promptTokenIds: promptIds,
    sampling: { temperature: 0 },
    maxTokens: 1,
    n: 1,
  })) {
    // drain
  }
  return performance.now() - started;
}

function percentiles(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return {
    p50Us: Math.round(at(0.5) * 1000),
    p99Us: Math.round(at(0.99) * 1000),
    meanUs: Math.round((samples.reduce((a, b) => a + b, 0) / samples.length) * 1000),
  };
}

try {
  await waitForPort('127.0.0.1', routerPort, 20_000);
  for (let waited = 0; waited < 100; waited++) {
    const health = await fetch(`http://127.0.0.1:${routerPort}/health`).catch(() => null);
    if (health?.status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const directMs: number[] = [];
  const textMs: number[] = [];
  const idsMs: number[] = [];
  const base = { model: 'tiny-llama', max_tokens: 1, temperature: 0 };
  for (let i = 0; i < 50; i++) {
    await direct(-i);
    await post('/v1/completions', { ...base, prompt: promptText });
  }
  for (let i = 0; i < numRequests; i++) {
    directMs.push(await direct(i));
    textMs.push(await post('/v1/completions', { ...base, prompt: promptText }));
    idsMs.push(await post('/v1/completions', { ...base, prompt: promptIds }));
  }
  const d = percentiles(directMs);
  const t = percentiles(textMs);
  const ids = percentiles(idsMs);
  const results = {
    benchmark: 'router added latency (1-token completion, sequential, keep-alive)',
    machine: `${process.arch}, node ${process.version}, 2 cores shared by client, router, worker, NATS, Redis`,
    numRequests,
    direct: d,
    routerTextPrompt: t,
    routerTokenIdPrompt: ids,
    addedTextPrompt: { p50Us: t.p50Us - d.p50Us, p99Us: t.p99Us - d.p99Us, meanUs: t.meanUs - d.meanUs },
    addedTokenIdPrompt: {
      p50Us: ids.p50Us - d.p50Us,
      p99Us: ids.p99Us - d.p99Us,
      meanUs: ids.meanUs - d.meanUs,
    },
  };
  const text = JSON.stringify(results, null, 2);
  process.stdout.write(`${text}\n`);
  if (values.out !== undefined) writeFileSync(values.out, `${text}\n`);
} finally {
  client.close();
  agent.destroy();
  const exited = new Promise((resolve) => router.once('exit', resolve));
  router.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]); // profile written
  await worker.stop();
  await backplane.nats.stop();
  await backplane.redis.stop();
}
