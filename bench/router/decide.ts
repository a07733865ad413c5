// Routing decisions per second with a 1M-block KV index: the real Dispatcher.decide path
// (candidate views, prefix match over the index, cache_aware scoring and picking) on a registry
// of 64 workers (--workers) whose caches together hold 1,048,576 blocks. Prompts are 2048 tokens
// (128 blocks of 16), half of them sharing a long cached prefix, half unrelated.
//   node bench/router/decide.ts [--workers 64] [--runs 5] [--policy cache_aware ...] [--out FILE]
// Each policy makes --runs passes of 20,000 decisions (each timed alone); the summary is the
// median pass, since other processes on a shared machine land in some passes' tails, and the
// quantiles of each prompt's best pass (its cost undisturbed).
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Logger, seededRandom } from '@tandem/common';
import { AnnounceKind, create, Role, WorkerAnnounceSchema } from '@tandem/proto';
import {
  createPolicy,
  DecisionLog,
  Dispatcher,
  defaultCircuitBreakerParams,
  InflightCounts,
  KvIndex,
  type PolicyName,
  type RoutingRequest,
  WorkerRegistry,
} from '@tandem/router';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    blocks: { type: 'string', default: '1048576' },
    workers: { type: 'string', default: '64' },
    runs: { type: 'string', default: '5' },
    policy: { type: 'string', multiple: true }, // default: cache_aware, round_robin, power_of_two
  },
});
const numIndexBlocks = Number(values.blocks);
const numWorkers = Number(values.workers);
const numRuns = Number(values.runs);
const blocksPerPrompt = 128;
const pageSize = 16;
const random = seededRandom(1);
const logger = new Logger({ level: 'error' });

function randomKeys(count: number): Uint32Array {
  const keys = new Uint32Array(count * 2);
  for (let i = 0; i < keys.length; i++) keys[i] = Math.floor(random() * 2 ** 32);
  return keys;
}

const index = new KvIndex({ optimisticTtlMs: 3000, initialCapacity: numIndexBlocks });
const registry = new WorkerRegistry(
  {
    modelNames: ['m'],
    breaker: defaultCircuitBreakerParams,
    defaultPrefillTokensPerMs: 2,
    prefillRateAlpha: 0.2,
    defaultLeaseTtlMs: 10_000,
  },
  null,
  logger,
);
const workerIds = Array.from({ length: numWorkers }, (_, i) => `bench-w${i}`);
for (const [i, workerId] of workerIds.entries()) {
  registry.onAnnounce(
    create(WorkerAnnounceSchema, {
      kind: AnnounceKind.JOIN,
      workerId,
      grpcAddress: `127.0.0.1:${40000 + i}`, // never dialled: decisions do not touch the network
      modelName: 'm',
      role: Role.UNIFIED,
      kvLayout: { pageSize },
      leaseTtlMs: 10_000,
    }),
    Date.now(),
  );
}

// Fill the index: each worker caches prompt-shaped chains until the index holds numIndexBlocks.
const cachedPrompts: Uint32Array[] = [];
const fillStart = performance.now();
for (let filled = 0, w = 0; filled < numIndexBlocks; filled += blocksPerPrompt, w = (w + 1) % numWorkers) {
  const keys = randomKeys(blocksPerPrompt);
  index.stored(workerIds[w]!, keys);
  if (cachedPrompts.length < 4096) cachedPrompts.push(keys);
}
const fillMs = performance.now() - fillStart;

function makePrompts(count: number): RoutingRequest[] {
  return Array.from({ length: count }, (_, i) => {
    let keys: Uint32Array;
    if (i % 2 === 0) {
      // A cached 96-block prefix plus 32 new blocks.
      const cached = cachedPrompts[Math.floor(random() * cachedPrompts.length)]!;
      keys = new Uint32Array(blocksPerPrompt * 2);
      keys.set(cached.subarray(0, 96 * 2));
      keys.set(randomKeys(32), 96 * 2);
    } else {
      keys = randomKeys(blocksPerPrompt);
    }
    return {
      requestId: `r${i}`,
      numPromptTokens: blocksPerPrompt * pageSize,
      blockKeys: keys,
      routingKey: null,
    };
  });
}

function quantile(samples: Float64Array, q: number): number {
  const sorted = Float64Array.from(samples).sort();
  return Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(2));
}

/** One pass over the prompts: every decision timed on its own. */
async function timeRun(dispatcher: Dispatcher, prompts: RoutingRequest[]) {
  const none = new Set<string>();
  const nowMs = Date.now();
  const samplesUs = new Float64Array(prompts.length);
  let hits = 0;
  const gc = { count: 0, ms: 0 };
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count++;
      gc.ms += entry.duration;
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const loadAverage = Number(os.loadavg()[0]!.toFixed(2));
  const start = performance.now();
  for (let i = 0; i < prompts.length; i++) {
    const t0 = performance.now();
    const decision = dispatcher.decide(prompts[i]!, none, nowMs);
    samplesUs[i] = (performance.now() - t0) * 1000;
    if (decision.candidates.some((c) => (c.terms.matchedBlocks ?? 0) > 0)) hits++;
  }
  const totalMs = performance.now() - start;
  await new Promise((resolve) => setTimeout(resolve, 10)); // gc entries arrive asynchronously
  gcObserver.disconnect();
  // Even prompts have a cached prefix (makePrompts): their walk is 96 lookups, the others' one.
  const cached = samplesUs.filter((_, i) => i % 2 === 0);
  const uncached = samplesUs.filter((_, i) => i % 2 === 1);
  return {
    samplesUs,
    decisionsPerS: Math.round(prompts.length / (totalMs / 1000)),
    meanUs: Number(((totalMs * 1000) / prompts.length).toFixed(2)),
    p50Us: quantile(samplesUs, 0.5),
    p99Us: quantile(samplesUs, 0.99),
    p999Us: quantile(samplesUs, 0.999),
    cachedPrefix: { p50Us: quantile(cached, 0.5), p99Us: quantile(cached, 0.99) },
    noCachedPrefix: { p50Us: quantile(uncached, 0.5), p99Us: quantile(uncached, 0.99) },
    gc: { count: gc.count, ms: Number(gc.ms.toFixed(1)) },
    loadAverage1m: loadAverage,
    numPromptsWithCachedPrefix: hits,
  };
}

const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function measure(policyName: PolicyName, prompts: RoutingRequest[]) {
  const dispatcher = new Dispatcher({
    policy: createPolicy(policyName),
    index,
    registry,
    inflight: new InflightCounts(null, { replicaId: 'bench', replicaTtlMs: 10_000, refreshMs: 1000 }, logger),
    decisions: new DecisionLog(16),
    random: seededRandom(2),
    logger,
    maxAttempts: 1,
  });
  const nowMs = Date.now();
  for (let i = 0; i < 2000; i++) dispatcher.decide(prompts[i % prompts.length]!, new Set(), nowMs); // warm-up
  const runs = [];
  for (let run = 0; run < numRuns; run++) runs.push(await timeRun(dispatcher, prompts));
  // Each prompt's fastest pass: what a decision costs when no other process interrupts it (on a
  // shared machine, preemption and cold caches after it land on different prompts each pass).
  const bestUs = new Float64Array(prompts.length).fill(Number.POSITIVE_INFINITY);
  for (const { samplesUs } of runs)
    for (let i = 0; i < bestUs.length; i++) bestUs[i] = Math.min(bestUs[i]!, samplesUs[i]!);
  // The machine is shared: other processes' bursts land in some runs' tails, so each run is kept
  // and the summary is the median run's numbers (and the quietest run's p99).
  return {
    policy: policyName,
    numDecisionsPerRun: prompts.length,
    medianP50Us: median(runs.map((r) => r.p50Us)),
    medianP99Us: median(runs.map((r) => r.p99Us)),
    minP99Us: Math.min(...runs.map((r) => r.p99Us)),
    eachPromptsBestPass: { p50Us: quantile(bestUs, 0.5), p99Us: quantile(bestUs, 0.99) },
    runs: runs.map(({ samplesUs: _, ...run }) => run),
  };
}

const prompts = makePrompts(20_000);
const results = {
  benchmark: 'router decision time',
  machine: `${process.arch}, node ${process.version}`,
  numIndexBlocks: index.numBlocks,
  numWorkers,
  blocksPerPrompt,
  indexFillMs: Math.round(fillMs),
  heapUsedMb: Math.round(process.memoryUsage().heapUsed / 1e6),
  results: [] as Awaited<ReturnType<typeof measure>>[],
};
for (const name of (values.policy as PolicyName[] | undefined) ?? [
  'cache_aware',
  'round_robin',
  'power_of_two',
])
  results.results.push(await measure(name, prompts));
const text = JSON.stringify(results, null, 2);
process.stdout.write(`${text}\n`);
if (values.out !== undefined) writeFileSync(values.out, `${text}\n`);
registry.close();
