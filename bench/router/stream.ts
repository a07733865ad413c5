// Streaming throughput of one router replica (issue 17): K line-rate workers (stream/fake-worker.ts:
// the real worker host and engine, a free executor), a real `tandem router` process, and C
// concurrent SSE clients in their own process(es) (stream/clients.ts). Measures output tokens/s
// delivered to the clients, ITL at the client and straight from a worker over gRPC in the same
// run (router-added ITL = the difference), and the router's CPU (all its processes).
//   node bench/router/stream.ts [--clients 1000] [--workers 2] [--tokens-per-request 256]
//     [--router-processes 1] [--duration 15] [--warmup 5] [--step-ms 1] [--direct-streams 8]
//     [--client-processes 1] [--cpu-prof DIR] [--label TEXT] [--out bench/router/results/stream.json]
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { fixtureDir, freePort, repoRoot, startNatsServer, startRedisServer } from '@tandem/common/testing';
import { ItlHistogram } from './stream/itl-histogram.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    workers: { type: 'string', default: '2' },
    'tokens-per-request': { type: 'string', default: '256' },
    'router-processes': { type: 'string', default: '1' },
    duration: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '5' },
    'step-ms': { type: 'string', default: '1' },
    'direct-streams': { type: 'string', default: '8' },
    'client-processes': { type: 'string', default: '1' },
    'cpu-prof': { type: 'string' },
    label: { type: 'string', default: '' },
    out: { type: 'string', default: join(repoRoot, 'bench/router/results/stream.json') },
  },
});
const numClients = Number(values.clients);
const numWorkers = Number(values.workers);
const numRouterProcesses = Number(values['router-processes']);
const numClientProcesses = Number(values['client-processes']);
const modelDir = fixtureDir('tiny-llama');
const node = process.execPath;
const here = join(repoRoot, 'bench/router/stream');

/** The first stdout line of `child` that parses as JSON with this event. */
function eventLine(child: ChildProcess, event: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (parsed.event === event) resolve(parsed);
      } catch {
        // a log line
      }
    });
    // 'close', not 'exit': the last lines may still be in the pipe when the process exits.
    child.once('close', (code) => reject(new Error(`${event}: process exited (${String(code)})`)));
  });
}

/** User + system CPU seconds of `pid` and all its descendants (Linux /proc). */
function cpuSeconds(pid: number): number {
  const ticksPerS = 100;
  let total = 0;
  const visit = (p: number): void => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / ticksPerS;
      const children = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      for (const child of children.split(' ').filter((c) => c.length > 0)) visit(Number(child));
    } catch {
      // gone
    }
  };
  visit(pid);
  return total;
}

const children: ChildProcess[] = [];
const stopAll = async (): Promise<void> => {
  for (const child of children.reverse()) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }
};

const nats = await startNatsServer();
const redis = await startRedisServer();
try {
  const workerAddresses: string[] = [];
  const workerPids: number[] = [];
  for (let i = 0; i < numWorkers; i++) {
    const worker = spawn(
      node,
      [
        join(here, 'fake-worker.ts'),
        '--model',
        modelDir,
        '--nats',
        nats.url,
        '--redis',
        redis.url,
        '--worker-id',
        `stream-w${i}`,
        '--step-ms',
        values['step-ms'],
        '--max-running',
        String(Math.ceil(numClients / numWorkers) + Number(values['direct-streams']) + 16),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } },
    );
    children.push(worker);
    const ready = await eventLine(worker, 'ready');
    workerAddresses.push(String(ready.grpcAddress));
    workerPids.push(worker.pid!);
  }
  const routerPort = await freePort();
  const routerArgs = [
    'router',
    '--model',
    modelDir,
    '--port',
    String(routerPort),
    '--nats',
    nats.url,
    '--redis',
    redis.url,
    // Every client streams at once (the default admits 256 and queues the rest).
    '--max-concurrent',
    String(numClients + 64),
    ...(numRouterProcesses === 1 ? [] : ['--processes', String(numRouterProcesses)]),
  ];
  const profEnv =
    values['cpu-prof'] === undefined
      ? {}
      : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${values['cpu-prof']}` };
  const router = spawn(join(repoRoot, 'services/cli/bin/tandem'), routerArgs, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LOG_LEVEL: 'warn', ...profEnv },
  });
  children.push(router);
  // Ready once it serves and sees every worker.
  for (let waited = 0; ; waited++) {
    const health = await fetch(`http://127.0.0.1:${routerPort}/health`).catch(() => null);
    if (health?.status === 200) break;
    if (waited > 300) throw new Error('the router did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 2500)); // every worker announced (heartbeat 2 s)

  const clientProcesses: ChildProcess[] = [];
  const results: Promise<Record<string, unknown>>[] = [];
  const windowStarts: Promise<Record<string, unknown>>[] = [];
  const windowEnds: Promise<Record<string, unknown>>[] = [];
  for (let i = 0; i < numClientProcesses; i++) {
    const share = Math.floor(numClients / numClientProcesses) + (i < numClients % numClientProcesses ? 1 : 0);
    const directShare = i === 0 ? values['direct-streams'] : '0';
    const client = spawn(
      node,
      [
        join(here, 'clients.ts'),
        '--port',
        String(routerPort),
        '--model',
        'tiny-llama',
        '--clients',
        String(share),
        '--tokens-per-request',
        values['tokens-per-request'],
        '--warmup-s',
        values.warmup,
        '--duration-s',
        values.duration,
        '--direct-workers',
        workerAddresses.join(','),
        '--direct-streams',
        directShare,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(client);
    clientProcesses.push(client);
    windowStarts.push(eventLine(client, 'window-start'));
    windowEnds.push(eventLine(client, 'window-end'));
    results.push(eventLine(client, 'result'));
  }
  await windowStarts[0];
  const cpuAt = (): { router: number; workers: number; clients: number; atMs: number } => ({
    router: cpuSeconds(router.pid!),
    workers: workerPids.reduce((sum, pid) => sum + cpuSeconds(pid), 0),
    clients: clientProcesses.reduce((sum, c) => sum + cpuSeconds(c.pid!), 0),
    atMs: performance.now(),
  });
  const before = cpuAt();
  await windowEnds[0];
  const after = cpuAt();
  const parts = await Promise.all(results);
  const wallS = (after.atMs - before.atMs) / 1000;
  const windowS = Number(parts[0]!.windowS);
  type Part = { numTokens: number; numEvents: number; numRequests: number; numErrors: number; itl: never };
  const merge = (path: 'router' | 'direct') => {
    const list = parts.map((p) => p[path] as Part);
    const numTokens = list.reduce((s, p) => s + p.numTokens, 0);
    const numEvents = list.reduce((s, p) => s + p.numEvents, 0);
    return {
      tokensPerS: Math.round(numTokens / windowS),
      numTokens,
      tokensPerEvent: Math.round((numTokens / Math.max(1, numEvents)) * 100) / 100,
      numRequests: list.reduce((s, p) => s + p.numRequests, 0),
      numErrors: list.reduce((s, p) => s + p.numErrors, 0),
      itl: ItlHistogram.merge(list.map((p) => p.itl)).summary(),
    };
  };
  const viaRouter = merge('router');
  const direct = merge('direct');
  const cpuPercent = (key: 'router' | 'workers' | 'clients') =>
    Math.round(((after[key] - before[key]) / wallS) * 100);
  const result = {
    benchmark: 'router streaming throughput (SSE /v1/completions, line-rate workers)',
    label: values.label,
    machine: `${process.arch}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}; clients, router, workers, NATS and Redis share them`,
    params: {
      clients: numClients,
      workers: numWorkers,
      tokensPerRequest: Number(values['tokens-per-request']),
      routerProcesses: numRouterProcesses,
      durationS: windowS,
      stepMs: Number(values['step-ms']),
      directStreams: Number(values['direct-streams']),
      clientProcesses: numClientProcesses,
    },
    viaRouter,
    direct,
    addedItl: {
      p50Ms: Math.round((viaRouter.itl.p50Ms - direct.itl.p50Ms) * 1000) / 1000,
      p99Ms: Math.round((viaRouter.itl.p99Ms - direct.itl.p99Ms) * 1000) / 1000,
    },
    cpuPercent: {
      router: cpuPercent('router'),
      workers: cpuPercent('workers'),
      clients: cpuPercent('clients'),
    },
    // Router CPU per delivered token: the machine-independent cost (the CPU% above is what was left).
    routerCpuUsPerToken:
      Math.round(((after.router - before.router) / Math.max(1, viaRouter.numTokens)) * 1e7) / 10,
    // Other helpers' work on the same cores shows here (1-minute load average at the end).
    loadAverage: Math.round(loadavg()[0]! * 100) / 100,
  };
  const text = JSON.stringify(result, null, 2);
  process.stdout.write(`${text}\n`);
  writeFileSync(values.out, `${text}\n`);
} finally {
  await stopAll();
  await nats.stop();
  await redis.stop();
}
