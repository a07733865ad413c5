// Router memory over a 1-hour-equivalent replay (bounded by request count, not wall time): the
// real Dispatcher, WorkerRegistry, KvIndex, KvEventSync, InflightCounts (on a real redis-server),
// DecisionLog and KeyLimiter, routing 72,000 requests (1 hour at 20 req/s) to in-process fake
// workers that speak the real gRPC Worker protocol. Churn: a worker leaves and a new one joins
// every 3,000 requests; sessions (shared prefixes) and API keys come and go; every request's
// blocks reach the index as "stored" KV events and each worker evicts ("removed") beyond its
// cache size; some calls fail before their first token (retried elsewhere), some clients leave
// mid-stream, some workers are silent past the first-byte deadline. Every --sample requests:
// heap after a full GC and the size of every per-request / per-worker / per-key structure.
//   node --expose-gc bench/router/memory.ts [--requests 72000] [--warmup 12000] [--sample 4000]
//     [--out FILE]
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  addGrpcService,
  bindGrpcServer,
  connectRedis,
  grpc,
  Logger,
  seededRandom,
  UnavailableError,
} from '@tandem/common';
import { startRedisServer } from '@tandem/common/testing';
import {
  AnnounceKind,
  create,
  FinishReason,
  KvEventBatchSchema,
  Role,
  Worker,
  WorkerAnnounceSchema,
  WorkerLoadSchema,
} from '@tandem/proto';
import type { ApiKeyPolicy } from '../../services/router/src/auth/api-keys.ts';
import { KeyLimiter } from '../../services/router/src/auth/key-limiter.ts';
import { defaultCircuitBreakerParams } from '../../services/router/src/cluster/circuit-breaker.ts';
import { DecisionLog } from '../../services/router/src/cluster/decision-log.ts';
import { Dispatcher } from '../../services/router/src/cluster/dispatcher.ts';
import { InflightCounts } from '../../services/router/src/cluster/inflight.ts';
import { WorkerRegistry } from '../../services/router/src/cluster/worker-registry.ts';
import { toBlockKeys } from '../../services/router/src/kv/block-keys.ts';
import { KvEventSync } from '../../services/router/src/kv/kv-event-sync.ts';
import { KvIndex } from '../../services/router/src/kv/kv-index.ts';
import {
  defaultValidationLimits,
  validateCompletionRequest,
} from '../../services/router/src/openai/validate.ts';
import { createPolicy } from '../../services/router/src/policy/policies.ts';
import { blockHashes } from '../../services/tokenizer/src/index.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '72000' },
    warmup: { type: 'string', default: '12000' },
    sample: { type: 'string', default: '4000' },
    concurrency: { type: 'string', default: '16' },
    out: { type: 'string' },
  },
});
const numRequests = Number(values.requests);
const sampleEvery = Number(values.sample);
const numWarmup = Number(values.warmup);
const concurrency = Number(values.concurrency);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

const pageSize = 16;
const numWorkers = 8;
const churnEvery = 3000; // requests between a worker leaving and a new one joining
const cacheBlocksPerWorker = 4000; // a worker evicts beyond this many blocks
const numLiveSessions = 200; // sessions at once; one is replaced every 10 requests
const numLiveKeys = 50; // API keys at once; one is replaced every 100 requests
const loadReportEvery = 20; // requests between load reports (each worker reports once a second)
const random = seededRandom(3);
const logger = new Logger({ level: 'error' });

// ---- fake workers: the real gRPC Worker service, scripted answers ----
type Behaviour = 'ok' | 'fail' | 'silent';
interface FakeWorker {
  id: string;
  server: grpc.Server;
  address: string;
  kvSeq: bigint;
  startedAtMs: bigint;
  /** Cached blocks, oldest first (evicted from the front). */
  cached: bigint[];
  cachedSet: Set<bigint>;
}
const behaviourOf = new Map<string, Behaviour>(); // worker request id -> scripted behaviour

async function startFakeWorker(id: string): Promise<FakeWorker> {
  const server = new grpc.Server();
  addGrpcService(server, Worker, {
    async *generate(request, context) {
      const behaviour = behaviourOf.get(request.requestId) ?? 'ok';
      behaviourOf.delete(request.requestId);
      if (behaviour === 'fail') throw new UnavailableError('scripted failure before the first token');
      if (behaviour === 'silent') {
        await sleep(2000, undefined, { signal: context.signal }).catch(() => {});
        return;
      }
      const numPromptTokens = request.promptTokenIds.length;
      yield { choices: [{ index: 0, tokenIds: [7] }], numPromptTokens, numCachedTokens: 0 };
      await sleep(1);
      yield { choices: [{ index: 0, tokenIds: [8], finishReason: FinishReason.LENGTH }], numPromptTokens };
    },
    async health() {
      return { status: 1 };
    },
    async cancel() {
      return { found: false };
    },
    async info() {
      return { workerId: id, kvLayout: { pageSize } };
    },
    async *dumpBlocks() {},
  });
  const port = await bindGrpcServer(server, '127.0.0.1', 0);
  return {
    id,
    server,
    address: `127.0.0.1:${port}`,
    kvSeq: 0n,
    startedAtMs: BigInt(Date.now()),
    cached: [],
    cachedSet: new Set(),
  };
}

// ---- the router's structures, wired as router-app.ts wires them ----
const redisServer = await startRedisServer();
const redis = await connectRedis({ url: redisServer.url, name: 'memory-bench' });
const index = new KvIndex({ optimisticTtlMs: 3000 });
const registry = new WorkerRegistry(
  {
    modelNames: ['m'],
    // 10, not 3, consecutive failures open a circuit: the scripted faults (4 %) plus a loaded
    // machine's stalls would otherwise open every circuit at times and fail requests fast.
    breaker: { ...defaultCircuitBreakerParams, failureThreshold: 10 },
    defaultPrefillTokensPerMs: 2,
    prefillRateAlpha: 0.2,
    defaultLeaseTtlMs: 10_000,
  },
  null,
  logger,
);
const kvSync = new KvEventSync(
  index,
  async (workerId) => ({ workerId, startedAtMs: 0n, seq: 0n, blocks: [] }),
  logger,
);
const inflight = new InflightCounts(
  redis,
  { replicaId: 'memory-bench', replicaTtlMs: 10_000, refreshMs: 1000 },
  logger,
);
const decisions = new DecisionLog(10_000); // the router's default --decision-log-size
// The replay's clock for the per-key buckets: 50 ms per request (20 req/s), so "idle for a
// minute" means what it would over a real hour (the other structures' TTLs are seconds of wall
// time, which the replay's pace only shortens).
let replayMs = Date.now();
const keyLimiter = new KeyLimiter(
  null,
  { replicaId: 'memory-bench', slotLeaseMs: 60_000, clock: () => replayMs },
  logger,
);
registry.onEvent((event) => {
  if (event.type === 'load') kvSync.onWorkerSeq(event.workerId, event.kvSeq, event.startedAtMs);
  else if (event.type === 'left') {
    kvSync.forget(event.workerId);
    inflight.forget(event.workerId);
  }
});
inflight.start();
// As router-app.ts: expiry of silent workers and health probes of open circuits, every second.
const healthTimer = setInterval(() => {
  void registry.expireSilent(Date.now());
  void registry.probeUnhealthy(Date.now());
}, 1000);
const dispatcher = new Dispatcher({
  policy: createPolicy('cache_aware'),
  index,
  registry,
  inflight,
  decisions,
  random: seededRandom(4),
  logger,
  maxAttempts: 3,
  resilience: {
    retryBackoffMs: 1,
    retryBackoffMaxMs: 5,
    firstByteTimeoutMs: 500,
    hedgeAfterMs: 0,
    suspectAfterMs: 60_000,
    maxFailovers: 1,
  },
});

const workers = new Map<string, FakeWorker>();
let workerSeq = 0;
function announce(worker: FakeWorker): void {
  registry.onAnnounce(
    create(WorkerAnnounceSchema, {
      kind: AnnounceKind.JOIN,
      workerId: worker.id,
      grpcAddress: worker.address,
      modelName: 'm',
      role: Role.UNIFIED,
      kvLayout: { pageSize },
      startedAtMs: worker.startedAtMs,
      leaseTtlMs: 10_000,
    }),
    Date.now(),
  );
}
async function join(): Promise<void> {
  const worker = await startFakeWorker(`mem-w${workerSeq++}`);
  workers.set(worker.id, worker);
  announce(worker);
}
async function leave(): Promise<void> {
  const [first] = workers.values();
  if (first === undefined) return;
  workers.delete(first.id);
  registry.onAnnounce(
    create(WorkerAnnounceSchema, { kind: AnnounceKind.LEAVE, workerId: first.id, modelName: 'm' }),
    Date.now(),
  );
  first.server.forceShutdown();
}
for (let i = 0; i < numWorkers; i++) await join();

/** Every worker's load report (1 s at 20 req/s): what prunes the registry's prefill history. */
function reportLoads(): void {
  for (const worker of workers.values()) {
    announce(worker); // the heartbeat (re-adds a worker expired while this process was starved)
    registry.onLoad(
      create(WorkerLoadSchema, {
        workerId: worker.id,
        timestampMs: BigInt(Date.now()),
        load: { numRunning: 1, numTotalPages: 1000, numFreePages: 500 },
        kvSeq: worker.kvSeq,
        startedAtMs: worker.startedAtMs,
      }),
      Date.now(),
    );
  }
}

/** The worker cached a prompt: a "stored" event, and "removed" for what it evicts. */
function cachePrompt(worker: FakeWorker, hashes: bigint[]): void {
  const fresh = hashes.filter((hash) => !worker.cachedSet.has(hash));
  const events = [];
  if (fresh.length > 0) {
    for (const hash of fresh) {
      worker.cached.push(hash);
      worker.cachedSet.add(hash);
    }
    events.push({
      seq: ++worker.kvSeq,
      event: {
        case: 'stored' as const,
        value: { blocks: fresh.map((hash) => ({ hash, numTokens: pageSize })) },
      },
    });
  }
  if (worker.cached.length > cacheBlocksPerWorker) {
    const evicted = worker.cached.splice(0, worker.cached.length - cacheBlocksPerWorker);
    for (const hash of evicted) worker.cachedSet.delete(hash);
    events.push({ seq: ++worker.kvSeq, event: { case: 'removed' as const, value: { hashes: evicted } } });
  }
  // As router-app.ts: only registered workers' events reach the index.
  if (events.length === 0 || registry.get(worker.id) === null) return;
  kvSync.onBatch(
    create(KvEventBatchSchema, { workerId: worker.id, startedAtMs: worker.startedAtMs, events }),
  );
}

// ---- the workload ----
const sessions: number[][] = [];
let sessionSeq = 0;
const newSession = (): number[] => Array.from({ length: 256 }, () => 3 + ((sessionSeq++ * 7919 + 13) % 997));
for (let i = 0; i < numLiveSessions; i++) sessions.push(newSession());
const keys: ApiKeyPolicy[] = [];
let keySeq = 0;
const newKey = (): ApiKeyPolicy => ({
  id: `key${(keySeq++).toString(16).padStart(12, '0')}`,
  limits: { requestsPerMinute: 100_000, tokensPerMinute: 10_000_000, maxConcurrent: 64 },
});
for (let i = 0; i < numLiveKeys; i++) keys.push(newKey());
const options = validateCompletionRequest(
  { model: 'm', prompt: [1], max_tokens: 2 },
  { ...defaultValidationLimits, servedModelNames: ['m'], vocabSize: 1000 },
).options;

const outcomes = { ok: 0, failedOver: 0, aborted: 0, failed: 0 };
const failures = new Map<string, number>();
async function runRequest(n: number): Promise<void> {
  replayMs += 1000 / 20;
  if (n % 10 === 0) sessions[Math.floor(random() * sessions.length)] = newSession();
  if (n % 100 === 0) keys[Math.floor(random() * keys.length)] = newKey();
  const session = sessions[Math.floor(random() * sessions.length)]!;
  const suffix = Array.from({ length: 32 + Math.floor(random() * 64) }, () => 3 + Math.floor(random() * 990));
  const promptTokenIds = [...session, ...suffix];
  const hashes = blockHashes('', promptTokenIds, pageSize);
  const requestId = `req-${n}`;
  const workerRequestId = `${requestId}-0`;
  const draw = random();
  // 3 % fail before their first token, 1 % stay silent past the deadline, 3 % of clients leave.
  if (draw < 0.03) behaviourOf.set(workerRequestId, 'fail');
  else if (draw < 0.04) behaviourOf.set(workerRequestId, 'silent');
  const controller = new AbortController();
  const grant = await keyLimiter.acquire(
    keys[Math.floor(random() * keys.length)]!,
    promptTokenIds.length + 2,
  );
  let numTokens = 0;
  try {
    for await (const response of dispatcher.generate({
      requestId,
      workerRequestId,
      promptTokenIds,
      blockKeys: toBlockKeys(hashes),
      routingKey: null,
      options,
      maxTokens: 2,
      signal: controller.signal,
    })) {
      numTokens += response.choices.reduce((sum, choice) => sum + choice.tokenIds.length, 0);
      if (draw > 0.97) controller.abort(new Error('client left'));
    }
    outcomes.ok++;
    if (draw < 0.04) outcomes.failedOver++;
    const chosen = decisions.get(requestId)?.at(-1)?.workerId;
    const worker = chosen === undefined || chosen === null ? undefined : workers.get(chosen);
    if (worker !== undefined) cachePrompt(worker, hashes);
  } catch (error) {
    if (controller.signal.aborted) outcomes.aborted++;
    else {
      outcomes.failed++;
      const name = error instanceof Error ? `${error.name}: ${error.message.slice(0, 60)}` : String(error);
      failures.set(name, (failures.get(name) ?? 0) + 1);
    }
  } finally {
    behaviourOf.delete(workerRequestId);
    grant.release(promptTokenIds.length + numTokens);
  }
}

function sizes() {
  const routed = registry.all();
  return {
    heapUsedMb: Number((process.memoryUsage().heapUsed / 1e6).toFixed(2)),
    arrayBuffersMb: Number((process.memoryUsage().arrayBuffers / 1e6).toFixed(2)),
    rssMb: Number((process.memoryUsage().rss / 1e6).toFixed(2)),
    decisionLog: decisions.size,
    indexBlocks: index.numBlocks,
    indexPendingBlocks: index.numPendingBlocks,
    indexPendingBatches: index.numPendingBatches,
    indexSlots: index.slotCapacity,
    indexWorkers: index.numWorkers,
    kvSyncWorkers: kvSync.numWorkers,
    inflight: inflight.sizes,
    registryWorkers: routed.length,
    pendingPrefills: routed.reduce((sum, worker) => sum + worker.pendingPrefills.size, 0),
    recentPrefills: registry.numRecentPrefills,
    keyLimiterKeys: keyLimiter.numLocalKeys,
    keyLimiterRunning: keyLimiter.numLocalRunning,
  };
}

const samples: (ReturnType<typeof sizes> & { requests: number; elapsedS: number })[] = [];
const startMs = performance.now();
async function sample(requests: number): Promise<void> {
  await inflight.settled();
  await sleep(20); // let cancelled calls' finally blocks run
  gc?.();
  samples.push({ requests, elapsedS: Number(((performance.now() - startMs) / 1000).toFixed(1)), ...sizes() });
  process.stderr.write(`${JSON.stringify(samples.at(-1))}\n`);
}

let next = 0;
let completed = 0;
let nextChurn = churnEvery;
/** Requests run `concurrency` at a time up to `stopAt`; workers churn and report load as they go. */
async function runUntil(stopAt: number): Promise<void> {
  const lane = async (): Promise<void> => {
    while (next < stopAt) {
      const n = next++;
      await runRequest(n);
      completed++;
      if (completed % loadReportEvery === 0) reportLoads();
      if (completed >= nextChurn) {
        nextChurn += churnEvery;
        await leave();
        await join();
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}
// Warm-up: the bounded structures fill (the decision log's 10,000 records, every worker's cache)
// before the first sample, so the quarters compare steady states.
await runUntil(numWarmup);
await sample(0);
while (next < numWarmup + numRequests) {
  await runUntil(Math.min(numWarmup + numRequests, next + sampleEvery));
  await sample(completed - numWarmup);
}

/** Every number of a sample, nested ones as a.b. */
function flatten(value: object, prefix = ''): Record<string, number> {
  const flat: Record<string, number> = {};
  for (const [key, field] of Object.entries(value)) {
    if (typeof field === 'number') flat[`${prefix}${key}`] = field;
    else if (typeof field === 'object' && field !== null)
      Object.assign(flat, flatten(field, `${prefix}${key}.`));
  }
  return flat;
}
const meanOf = (list: typeof samples): Record<string, number> => {
  const sums: Record<string, number> = {};
  for (const sample of list)
    for (const [key, value] of Object.entries(flatten(sample))) sums[key] = (sums[key] ?? 0) + value;
  return Object.fromEntries(
    Object.entries(sums).map(([key, sum]) => [key, Number((sum / list.length).toFixed(2))]),
  );
};
// Quarters of the replay by request count (the first quarter includes the bounded structures
// filling up: the decision log holds the last 10,000 requests' records).
const firstQuarter = samples.filter((s) => s.requests > 0 && s.requests <= numRequests / 4);
const lastQuarter = samples.filter((s) => s.requests > (3 * numRequests) / 4);
/** Least-squares slope of heap used over the second half, in MB per 10,000 requests. */
function heapSlope(): number {
  const half = samples.filter((s) => s.requests > numRequests / 2);
  const mx = half.reduce((sum, s) => sum + s.requests, 0) / half.length;
  const my = half.reduce((sum, s) => sum + s.heapUsedMb, 0) / half.length;
  let num = 0;
  let den = 0;
  for (const s of half) {
    num += (s.requests - mx) * (s.heapUsedMb - my);
    den += (s.requests - mx) ** 2;
  }
  return den === 0 ? 0 : Number(((num / den) * 10_000).toFixed(3));
}
const result = {
  benchmark: 'router memory over a 1-hour-equivalent replay',
  machine: `${process.arch}, node ${process.version}`,
  numRequests,
  numWarmupRequests: numWarmup,
  sampleEvery,
  concurrency,
  numWorkersAtOnce: numWorkers,
  numWorkersSeen: workerSeq,
  numSessionsSeen: sessionSeq / 256,
  numKeysSeen: keySeq,
  outcomes,
  failures: Object.fromEntries(failures),
  firstQuarterMean: meanOf(firstQuarter),
  lastQuarterMean: meanOf(lastQuarter),
  secondHalfHeapSlopeMbPer10kRequests: heapSlope(),
  samples,
};
const text = JSON.stringify(result, null, 2);
process.stdout.write(`${text}\n`);
if (values.out !== undefined) writeFileSync(values.out, `${text}\n`);

clearInterval(healthTimer);
for (const worker of workers.values()) worker.server.forceShutdown();
await inflight.stop();
registry.close();
redis.disconnect();
await redisServer.stop();
