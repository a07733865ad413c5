// Per-request and per-worker state stays bounded: every path of a request (success, a worker that
// fails before its first token, one silent past its deadline, a client that leaves mid-stream)
// frees what it took, and a worker that leaves takes its state with it. Real gRPC worker stand-ins
// (the Worker service on a local port); bench/router/memory.ts replays an hour of this.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { addGrpcService, bindGrpcServer, grpc, Logger, seededRandom, UnavailableError } from '@tandem/common';
import { AnnounceKind, create, FinishReason, Role, Worker, WorkerAnnounceSchema } from '@tandem/proto';
import { defaultCircuitBreakerParams } from '../src/cluster/circuit-breaker.ts';
import { DecisionLog } from '../src/cluster/decision-log.ts';
import { Dispatcher } from '../src/cluster/dispatcher.ts';
import { InflightCounts } from '../src/cluster/inflight.ts';
import { WorkerRegistry } from '../src/cluster/worker-registry.ts';
import { KvEventSync } from '../src/kv/kv-event-sync.ts';
import { KvIndex } from '../src/kv/kv-index.ts';
import { defaultValidationLimits, validateCompletionRequest } from '../src/openai/validate.ts';
import { createPolicy } from '../src/policy/policies.ts';

const logger = new Logger({ level: 'error' });
const servers: grpc.Server[] = [];
after(() => {
  for (const server of servers) server.forceShutdown();
});

/** A worker stand-in whose answer each call's request id picks: ok, fail, silent or slow. */
async function fakeWorker(): Promise<string> {
  const server = new grpc.Server();
  addGrpcService(server, Worker, {
    async *generate(request, context) {
      const kind = request.requestId.split(':')[0];
      if (kind === 'fail') throw new UnavailableError('scripted failure');
      if (kind === 'silent' || kind === 'slow') {
        await sleep(kind === 'silent' ? 10_000 : 20, undefined, { signal: context.signal }).catch(() => {});
        if (kind === 'silent') return;
      }
      const numPromptTokens = request.promptTokenIds.length;
      yield { choices: [{ index: 0, tokenIds: [7] }], numPromptTokens };
      await sleep(5, undefined, { signal: context.signal }).catch(() => {});
      yield { choices: [{ index: 0, tokenIds: [8], finishReason: FinishReason.LENGTH }], numPromptTokens };
    },
    async health() {
      return { status: 1 };
    },
    async cancel() {
      return { found: false };
    },
    async info() {
      return {};
    },
    async *dumpBlocks() {},
  });
  servers.push(server);
  return `127.0.0.1:${await bindGrpcServer(server, '127.0.0.1', 0)}`;
}

function registryOf(): WorkerRegistry {
  return new WorkerRegistry(
    {
      modelNames: ['m'],
      breaker: { ...defaultCircuitBreakerParams, failureThreshold: 1_000_000 },
      defaultPrefillTokensPerMs: 2,
      prefillRateAlpha: 0.2,
      defaultLeaseTtlMs: 10_000,
    },
    null,
    logger,
  );
}

function announce(registry: WorkerRegistry, workerId: string, grpcAddress: string, leave = false): void {
  registry.onAnnounce(
    create(WorkerAnnounceSchema, {
      kind: leave ? AnnounceKind.LEAVE : AnnounceKind.JOIN,
      workerId,
      grpcAddress,
      modelName: 'm',
      role: Role.UNIFIED,
      kvLayout: { pageSize: 4 },
      leaseTtlMs: 10_000,
    }),
    Date.now(),
  );
}

test('every request path frees its in-flight count, prefill entry and index batch; logs stay capped', async () => {
  const registry = registryOf();
  const index = new KvIndex({ optimisticTtlMs: 50 });
  const inflight = new InflightCounts(
    null,
    { replicaId: 'r', replicaTtlMs: 10_000, refreshMs: 1000 },
    logger,
  );
  const decisions = new DecisionLog(64);
  announce(registry, 'a', await fakeWorker());
  announce(registry, 'b', await fakeWorker());
  const dispatcher = new Dispatcher({
    policy: createPolicy('cache_aware'),
    index,
    registry,
    inflight,
    decisions,
    random: seededRandom(1),
    logger,
    maxAttempts: 2,
    resilience: {
      retryBackoffMs: 1,
      retryBackoffMaxMs: 2,
      firstByteTimeoutMs: 2000, // generous: a loaded machine must not turn 'ok' into timeouts
      hedgeAfterMs: 10,
      suspectAfterMs: 60_000,
      maxFailovers: 1,
    },
  });
  const { options } = validateCompletionRequest(
    { model: 'm', prompt: [1], max_tokens: 2 },
    { ...defaultValidationLimits, servedModelNames: ['m'], vocabSize: 1000 },
  );
  // Each worker's channel connected first, so the burst measures paths, not connection set-up.
  for (const worker of registry.all()) await worker.client.health({}, { timeoutMs: 10_000 });
  const kinds = ['ok', 'fail', 'silent', 'slow', 'abort'] as const;
  const outcomes = new Map<string, number>();
  await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const kind = kinds[i % kinds.length]!;
      const controller = new AbortController();
      const promptTokenIds = Array.from({ length: 16 }, (_, j) => 3 + ((i * 31 + j) % 97));
      const keys = new Uint32Array(8).map((_, j) => i * 8 + j + 1);
      try {
        for await (const _ of dispatcher.generate({
          requestId: `req-${i}`,
          workerRequestId: `${kind === 'abort' ? 'slow' : kind}:${i}`,
          promptTokenIds,
          blockKeys: keys,
          routingKey: null,
          options,
          maxTokens: 2,
          signal: controller.signal,
        }))
          if (kind === 'abort') controller.abort(new Error('client left'));
        outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
      } catch {
        outcomes.set(`${kind} failed`, (outcomes.get(`${kind} failed`) ?? 0) + 1);
      }
    }),
  );
  await sleep(100); // cancelled calls' cleanup; optimistic entries past their TTL
  index.expire(Date.now());
  assert.ok(
    (outcomes.get('ok') ?? 0) > 0 && (outcomes.get('abort failed') ?? 0) > 0,
    JSON.stringify([...outcomes]),
  );
  for (const worker of registry.all()) assert.equal(worker.pendingPrefills.size, 0, worker.workerId);
  assert.deepEqual(inflight.sizes, { local: 0, others: 0, sent: 0, totals: 0, dirty: 0, syncsInFlight: 0 });
  assert.equal(index.numPendingBatches, 0);
  assert.equal(index.numPendingBlocks, 0);
  assert.equal(decisions.size, 64);
  registry.close();
});

test("a departed worker's index entries, event sync, slot and in-flight counts go with it", () => {
  const registry = registryOf();
  const index = new KvIndex({ optimisticTtlMs: 1000 });
  const kvSync = new KvEventSync(
    index,
    async (workerId) => ({ workerId, startedAtMs: 0n, seq: 0n, blocks: [] }),
    logger,
  );
  const inflight = new InflightCounts(
    null,
    { replicaId: 'r', replicaTtlMs: 10_000, refreshMs: 1000 },
    logger,
  );
  registry.onEvent((event) => {
    if (event.type === 'left') {
      kvSync.forget(event.workerId);
      inflight.forget(event.workerId);
    }
  });
  // 100 workers come and go, each leaving with blocks cached and a request counted.
  for (let i = 0; i < 100; i++) {
    const id = `w${i}`;
    announce(registry, id, `127.0.0.1:${20000 + i}`);
    kvSync.onBatch({
      $typeName: 'tandem.worker.v1.KvEventBatch',
      workerId: id,
      startedAtMs: 1n,
      events: [
        {
          $typeName: 'tandem.worker.v1.KvEvent',
          seq: 1n,
          event: {
            case: 'stored',
            value: {
              $typeName: 'tandem.worker.v1.BlocksStored',
              namespace: '',
              blocks: Array.from({ length: 50 }, (_, j) => ({
                $typeName: 'tandem.worker.v1.CachedBlockRef' as const,
                hash: BigInt(i * 1000 + j + 1),
                numTokens: 4,
              })),
            },
          },
        },
      ],
    });
    inflight.acquire(id);
    if (i >= 2) announce(registry, `w${i - 2}`, '', true);
  }
  assert.equal(registry.size, 2);
  assert.equal(kvSync.numWorkers, 2);
  assert.equal(index.numWorkers, 2);
  assert.equal(index.numBlocks, 100);
  assert.ok(index.slotCapacity <= 3, `slots are reused: ${index.slotCapacity}`);
  assert.equal(inflight.sizes.local, 2);
  registry.close();
});

test("a worker's finished-prefill history is capped even when its load reports stop", () => {
  const registry = registryOf();
  announce(registry, 'quiet', '127.0.0.1:1');
  for (let i = 0; i < 20_000; i++) {
    registry.prefillSent('quiet', `r${i}`, i * 10, 100);
    registry.prefillDone('quiet', `r${i}`, i * 10 + 5);
  }
  assert.ok(registry.numRecentPrefills <= 1024 + 1, `${registry.numRecentPrefills} kept`);
  assert.equal(registry.get('quiet')?.pendingPrefills.size, 0);
  registry.close();
});

test("a departed worker's metric series are dropped", async () => {
  const { RouterMetrics } = await import('../src/metrics.ts');
  const metrics = new RouterMetrics('m');
  for (let i = 0; i < 50; i++) {
    const worker = `gone${i}`;
    metrics.decisionsOf('cache_aware', worker).inc();
    metrics.prefillDecisions.inc({ type: 'remote', worker });
    for (const counter of [metrics.retries, metrics.hedges, metrics.failovers])
      counter.with({ worker }).inc();
    metrics.forgetWorker(worker, 'cache_aware');
  }
  metrics.decisions.inc({ policy: 'cache_aware', worker: 'stays' });
  const text = metrics.registry.render();
  metrics.close();
  assert.equal(text.includes('gone'), false);
  assert.equal(text.includes('worker="stays"'), true);
});
