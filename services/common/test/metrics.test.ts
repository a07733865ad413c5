// The Prometheus registry's exposition text, the metrics endpoint, and when tracing turns on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MetricsRegistry, startMetricsServer, tracingConfigured } from '@tandem/common';

test('counters, gauges and histograms render in the text exposition format', () => {
  const registry = new MetricsRegistry({ constLabels: { worker: 'w"1\\', model: 'm' } });
  const requests = registry.counter('x_requests_total', 'Requests');
  requests.inc({ status: '200' });
  requests.inc({ status: '200' }, 2);
  requests.inc({ status: '429' });
  registry.gauge('x_queue', 'Queue').set({}, 7);
  const latency = registry.histogram('x_seconds', 'Latency', [0.1, 1]);
  for (const value of [0.05, 0.1, 0.5, 3]) latency.observe(value);
  assert.equal(
    registry.render(),
    [
      '# HELP x_requests_total Requests',
      '# TYPE x_requests_total counter',
      'x_requests_total{worker="w\\"1\\\\",model="m",status="200"} 3',
      'x_requests_total{worker="w\\"1\\\\",model="m",status="429"} 1',
      '# HELP x_queue Queue',
      '# TYPE x_queue gauge',
      'x_queue{worker="w\\"1\\\\",model="m"} 7',
      '# HELP x_seconds Latency',
      '# TYPE x_seconds histogram',
      'x_seconds_bucket{worker="w\\"1\\\\",model="m",le="0.1"} 2',
      'x_seconds_bucket{worker="w\\"1\\\\",model="m",le="1"} 3',
      'x_seconds_bucket{worker="w\\"1\\\\",model="m",le="+Inf"} 4',
      'x_seconds_sum{worker="w\\"1\\\\",model="m"} 3.65',
      'x_seconds_count{worker="w\\"1\\\\",model="m"} 4',
      '',
    ].join('\n'),
  );
});

test('aliases repeat a series under another name with model_name; bound series exist at 0', () => {
  const registry = new MetricsRegistry({ constLabels: { model: 'demo' } });
  const waiting = registry.gauge('tandem_waiting', 'Waiting', { aliases: ['vllm:num_requests_waiting'] });
  let depth = 3;
  waiting.track({}, () => depth);
  registry.counter('tandem_retries_total', 'Retries').with({});
  depth = 5;
  const text = registry.render();
  assert.match(text, /^tandem_waiting\{model="demo"\} 5$/m);
  assert.match(text, /^# TYPE vllm:num_requests_waiting gauge$/m);
  assert.match(text, /^vllm:num_requests_waiting\{model="demo",model_name="demo"\} 5$/m);
  assert.match(text, /^tandem_retries_total\{model="demo"\} 0$/m);
});

test('trackAll lists series that come and go at each scrape', () => {
  const registry = new MetricsRegistry();
  let workers = ['a', 'b'];
  registry.gauge('x_state', 'State').trackAll(() => workers.map((worker, i) => [{ worker }, i] as const));
  assert.match(registry.render(), /x_state\{worker="b"\} 1/);
  workers = ['c'];
  const text = registry.render();
  assert.doesNotMatch(text, /worker="b"/);
  assert.match(text, /x_state\{worker="c"\} 0/);
});

test('a disabled registry records and renders nothing; a name is registered once', () => {
  const off = new MetricsRegistry({ enabled: false });
  off.counter('x_total', 'X').inc();
  off.histogram('x_seconds', 'X', [1]).with({}).observe(2);
  assert.equal(off.render(), '');
  const on = new MetricsRegistry();
  on.counter('x_total', 'X', { aliases: ['vllm:x_total'] });
  assert.throws(() => on.gauge('x_total', 'again'), RangeError);
  assert.throws(() => on.gauge('vllm:x_total', 'alias taken'), RangeError);
  assert.throws(() => on.gauge('bad-name', 'invalid'), RangeError);
});

test('the metrics endpoint serves GET /metrics and /healthz on a free port, 404 elsewhere', async () => {
  const registry = new MetricsRegistry();
  registry.counter('x_total', 'X').inc({}, 4);
  const server = await startMetricsServer(registry, { host: '127.0.0.1', port: 0 });
  try {
    assert.ok(server.port > 0);
    assert.equal(server.address, `127.0.0.1:${server.port}`);
    const response = await fetch(`http://${server.address}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(await response.text(), /^x_total 4$/m);
    const health = await fetch(`http://${server.address}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'ok\n');
    assert.equal((await fetch(`http://${server.address}/`)).status, 404);
  } finally {
    await server.close();
  }
});

test('traces are on only when the OTEL_* environment asks for an exporter', () => {
  assert.equal(tracingConfigured({}), false);
  assert.equal(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true);
  assert.equal(
    tracingConfigured({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }),
    true,
  );
  assert.equal(tracingConfigured({ OTEL_TRACES_EXPORTER: 'console' }), true);
  assert.equal(
    tracingConfigured({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }),
    false,
  );
  assert.equal(
    tracingConfigured({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }),
    false,
  );
});
