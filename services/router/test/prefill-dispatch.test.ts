// The registry keeps prefill workers apart from routing candidates, and the dispatcher chooses one
// for a decode worker from the index (no sockets: gRPC clients are created but never dialled).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Logger, seededRandom } from '@tandem/common';
import { AnnounceKind, create, Role, WorkerAnnounceSchema } from '@tandem/proto';
import { defaultCircuitBreakerParams } from '../src/cluster/circuit-breaker.ts';
import { DecisionLog } from '../src/cluster/decision-log.ts';
import { Dispatcher } from '../src/cluster/dispatcher.ts';
import { InflightCounts } from '../src/cluster/inflight.ts';
import { WorkerRegistry } from '../src/cluster/worker-registry.ts';
import { KvIndex } from '../src/kv/kv-index.ts';
import { createPolicy } from '../src/policy/policies.ts';
import { defaultPrefillPolicyParams } from '../src/policy/prefill-policy.ts';
import type { RoutingRequest } from '../src/policy/types.ts';
import { routerOptions, routerOptionsFrom } from '../src/router-options.ts';

const logger = new Logger({ level: 'error', fields: { service: 'test' } });

function setup(disaggThreshold: number) {
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
  const announce = (workerId: string, role: Role, port: number) =>
    registry.onAnnounce(
      create(WorkerAnnounceSchema, {
        kind: AnnounceKind.JOIN,
        workerId,
        grpcAddress: `127.0.0.1:${port}`,
        modelName: 'm',
        role,
        kvLayout: { pageSize: 16, numLayers: 2, pageBytes: 1000n },
        leaseTtlMs: 10_000,
      }),
      Date.now(),
    );
  announce('d', Role.DECODE, 41000);
  announce('p0', Role.PREFILL, 41001);
  announce('p1', Role.PREFILL, 41002);
  const index = new KvIndex({ optimisticTtlMs: 3000 });
  const dispatcher = new Dispatcher({
    policy: createPolicy('cache_aware'),
    index,
    registry,
    inflight: new InflightCounts(null, { replicaId: 'test', replicaTtlMs: 10_000, refreshMs: 1000 }, logger),
    decisions: new DecisionLog(16),
    random: seededRandom(1),
    logger,
    maxAttempts: 1,
    prefill: { ...defaultPrefillPolicyParams, disaggThreshold },
  });
  return { registry, index, dispatcher };
}

const keys = new Uint32Array(Array.from({ length: 24 }, (_, i) => 1000 + i)); // 12 blocks
const request: RoutingRequest = { requestId: 'r', numPromptTokens: 200, blockKeys: keys, routingKey: null };

test('prefill workers are never routing candidates, but are known and indexed', () => {
  const { registry, index, dispatcher } = setup(0);
  assert.equal(registry.size, 1);
  assert.deepEqual(
    registry.all().map((w) => w.workerId),
    ['d'],
  );
  assert.deepEqual(
    registry.prefillWorkers().map((w) => w.workerId),
    ['p0', 'p1'],
  );
  assert.equal(registry.get('p1')?.role, 'prefill');
  assert.equal(registry.get('d')?.kvBytesPerPage, 4000);
  index.stored('p1', keys);
  const decision = dispatcher.decide(request, new Set(), Date.now());
  assert.deepEqual(
    decision.candidates.map((c) => c.workerId),
    ['d'],
  );
  const prefill = dispatcher.decidePrefill(request, registry.get('d')!);
  assert.equal(prefill.type, 'remote');
  if (prefill.type !== 'remote') return;
  assert.equal(prefill.workerId, 'p1');
  assert.equal(prefill.address, '127.0.0.1:41002');
  assert.equal(prefill.numUncachedTokens, 8);
  assert.equal(prefill.numUncachedOnDecode, 200);
  // 13 pages D lacks x 4000 bytes, at 2 MB/ms on one host.
  assert.equal(prefill.candidates[1]!.terms.transferBytes, 52_000);
  registry.remove('p1', 'test');
  const after = dispatcher.decidePrefill(request, registry.get('d')!);
  assert.equal(after.type === 'remote' && after.workerId, 'p0');
  registry.close();
});

test('the threshold counts what the decode worker holds: cached on D -> local', () => {
  const { registry, index, dispatcher } = setup(64);
  index.stored('d', keys.subarray(0, 22)); // 11 blocks: 176 tokens cached on D, 24 uncached
  const local = dispatcher.decidePrefill(request, registry.get('d')!);
  assert.equal(local.type, 'local');
  assert.equal(local.type === 'local' && local.numUncachedOnDecode, 24);
  index.cleared('d');
  assert.equal(dispatcher.decidePrefill(request, registry.get('d')!).type, 'remote');
  registry.close();
});

test('with no prefill worker known there is no decision (the decode worker decides)', () => {
  const { registry, dispatcher } = setup(0);
  registry.remove('p0', 'test');
  registry.remove('p1', 'test');
  assert.equal(dispatcher.decidePrefill(request, registry.get('d')!).type, 'undecided');
  registry.close();
});

test('tandem router --disagg-threshold N sets the threshold (default 0; negative is refused)', () => {
  const base = ['--model', 'DIR', '--nats', 'nats://127.0.0.1:1', '--redis', 'none'];
  const from = (argv: string[]) => routerOptionsFrom(routerOptions.parse(argv, {}), logger);
  assert.equal(from(base).disaggThreshold, 0);
  assert.equal(from([...base, '--disagg-threshold', '64']).disaggThreshold, 64);
  assert.throws(() => from([...base, '--disagg-threshold', '-1']), /--disagg-threshold/);
});
