// The planner's PromQL on a real Prometheus (Debian's `prometheus`, which bootstrap.sh installs):
// it scrapes a small exporter serving the router's and workers' metric names with known
// rates and distributions, and PrometheusSignals must read them back.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { UnavailableError } from '@tandem/common';
import type { ChildServer } from '@tandem/common/testing';
import { PrometheusSignals } from '../src/prometheus-signals.ts';
import { startPrometheus, waitForSamples } from './prometheus.ts';

const startedS = Date.now() / 1000;
let exporter: Server;
let prometheus: ChildServer;

/** Cumulative counts of a histogram observing `perS` values a second, `shares` of them in each bucket. */
function histogram(name: string, bounds: number[], shares: number[], perS: number, sum: number): string {
  const elapsed = Date.now() / 1000 - startedS;
  const total = perS * elapsed;
  let cumulative = 0;
  const lines = bounds.map((le, i) => {
    cumulative += (shares[i] ?? 0) * total;
    return `${name}_bucket{le="${le}"} ${cumulative}`;
  });
  lines.push(`${name}_bucket{le="+Inf"} ${total}`, `${name}_sum ${sum * elapsed}`, `${name}_count ${total}`);
  return `# TYPE ${name} histogram\n${lines.join('\n')}`;
}

function metrics(): string {
  const elapsed = Date.now() / 1000 - startedS;
  const gauge = (name: string, series: Array<[string, string, string, number]>) =>
    `# TYPE ${name} gauge\n${series.map(([w, role, model, v]) => `${name}{worker="${w}",role="${role}",model="${model}"} ${v}`).join('\n')}`;
  return [
    // 80% of first tokens within 0.25 s, the rest in (0.25, 0.5]: p90 = 0.25 + 0.25 * (0.1 / 0.2) = 0.375
    histogram('tandem_router_time_to_first_token_seconds', [0.1, 0.25, 0.5, 1], [0.5, 0.3, 0.2, 0], 20, 4),
    // 95% of tokens within 0.02 s: p90 = 0.01 + 0.01 * (0.9 - 0.5) / 0.45
    histogram('tandem_router_queue_seconds', [0.01, 0.02, 0.05], [0.5, 0.45, 0.05], 20, 0.2),
    '# TYPE tandem_router_prompt_tokens_total counter',
    `tandem_router_prompt_tokens_total ${12_000 * elapsed}`,
    '# TYPE tandem_router_cached_tokens_total counter',
    `tandem_router_cached_tokens_total ${2_000 * elapsed}`,
    '# TYPE tandem_router_completion_tokens_total counter',
    `tandem_router_completion_tokens_total ${3_000 * elapsed}`,
    gauge('tandem_worker_queued_prefill_tokens', [
      ['p-0', 'prefill', 'llama', 4000],
      ['p-1', 'prefill', 'llama', 1000],
      ['p-x', 'prefill', 'other-model', 99_999],
    ]),
    gauge('tandem_worker_kv_usage_ratio', [
      ['d-0', 'decode', 'llama', 0.5],
      ['d-1', 'decode', 'llama', 0.75],
      ['d-x', 'decode', 'other-model', 0.99],
    ]),
    gauge('tandem_worker_requests_waiting', [
      ['d-0', 'decode', 'llama', 2],
      ['d-1', 'decode', 'llama', 0],
      ['p-0', 'prefill', 'llama', 3],
    ]),
    gauge('tandem_worker_requests_running', [
      ['d-0', 'decode', 'llama', 40],
      ['d-1', 'decode', 'llama', 7],
      ['p-0', 'prefill', 'llama', 1],
      ['p-1', 'prefill', 'llama', 0],
    ]),
    '',
  ].join('\n');
}

before(async () => {
  exporter = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    response.end(metrics());
  });
  await new Promise<void>((resolve) => exporter.listen(0, '127.0.0.1', resolve));
  prometheus = await startPrometheus([`127.0.0.1:${(exporter.address() as AddressInfo).port}`]);
  // rate() over 10 s is exact once the whole window holds scrapes (1 s apart).
  await waitForSamples(`http://127.0.0.1:${prometheus.port}`, 'tandem_router_prompt_tokens_total', '10s', 10);
});

after(async () => {
  await prometheus?.stop();
  exporter?.close();
});

function signals(model: string | null = 'llama'): PrometheusSignals {
  return new PrometheusSignals({
    url: `http://127.0.0.1:${prometheus.port}`,
    window: '10s',
    model,
    selector: 'job="tandem"',
    timeoutMs: 5000,
  });
}

function near(actual: number | null, expected: number, tolerance: number, what: string): void {
  assert.ok(
    actual !== null && Math.abs(actual - expected) <= tolerance,
    `${what}: ${actual}, expected ${expected}`,
  );
}

test('reads the p90s, the token rates and the worker gauges of one model', async () => {
  const s = await signals().read();
  near(s.ttftP90S, 0.375, 0.01, 'TTFT p90');
  near(s.queueP90S, 0.01 + 0.01 * (0.4 / 0.45), 0.001, 'queue p90');
  assert.equal(s.itlP90S, null, 'no ITL series: no value, not zero');
  near(s.prefillTokensPerS, 10_000, 1500, 'uncached prompt tokens/s');
  near(s.decodeTokensPerS, 3_000, 450, 'completion tokens/s');
  assert.equal(s.queuedPrefillTokens, 5000, 'queued prefill tokens of this model (averaged over the window)');
  assert.equal(s.kvUsageSum, 1.25);
  assert.equal(s.kvUsageMax, 0.75);
  assert.equal(s.decodeRequestsWaiting, 2);
  assert.equal(s.decodeRequestsRunning, 47);
});

test('without a model filter every model counts', async () => {
  const s = await signals(null).read();
  assert.equal(s.kvUsageMax, 0.99);
  assert.equal(s.queuedPrefillTokens, 104_999);
});

test('per-worker load (running + waiting) picks the victims', async () => {
  assert.deepEqual([...(await signals().workerLoads('decode')).entries()].sort(), [
    ['d-0', 42],
    ['d-1', 7],
  ]);
  assert.deepEqual([...(await signals().workerLoads('prefill')).entries()].sort(), [
    ['p-0', 4],
    ['p-1', 0],
  ]);
});

test('a bad query and an unreachable Prometheus are UnavailableErrors that say why', async () => {
  await assert.rejects(
    signals().query('sum(('),
    (e: unknown) => e instanceof UnavailableError && /bad_data|parse/.test(e.message),
  );
  const nowhere = new PrometheusSignals({
    url: 'http://127.0.0.1:1',
    window: '1m',
    model: null,
    selector: '',
    timeoutMs: 1000,
  });
  await assert.rejects(
    nowhere.read(),
    (e: unknown) => e instanceof UnavailableError && /unreachable/.test(e.message),
  );
});
