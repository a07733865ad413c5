// One connected trace per request across the router, the decode worker and the prefill worker:
// `tandem up --observe` (router in its process, a prefill and a decode worker process, and a
// Prometheus scraping the three) exporting over OTLP/HTTP (JSON) to a receiver in this test,
// configured only by the standard OTEL_* variables.
// Each request's trace: the router's HTTP span -> routing span (decision terms) -> Generate call
// -> the decode worker's phases (queue, prefill, decode) -> the Prefill call -> the prefill
// worker's phases (queue, compute) and its per-layer KV pushes; GenAI attributes on the HTTP span.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { freePort, startRedisServer, type TestRedisServer } from '@tandem/common/testing';
import { repoRoot } from './router-cluster.ts';

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Map<string, string | number | boolean>;
}

/** OTLP/HTTP JSON trace receiver: POST /v1/traces. */
async function startReceiver(): Promise<{ url: string; spans: ReceivedSpan[]; server: Server }> {
  const spans: ReceivedSpan[] = [];
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    if (request.method === 'POST' && request.url === '/v1/traces') {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: {
          resource: { attributes: { key: string; value: OtlpValue }[] };
          scopeSpans: {
            spans: {
              traceId: string;
              spanId: string;
              parentSpanId?: string;
              name: string;
              kind: number;
              attributes?: { key: string; value: OtlpValue }[];
            }[];
          }[];
        }[];
      };
      for (const resourceSpans of body.resourceSpans) {
        const service =
          resourceSpans.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const scope of resourceSpans.scopeSpans) {
          for (const span of scope.spans) {
            spans.push({
              service,
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId ?? '',
              name: span.name,
              kind: span.kind,
              attributes: new Map(
                (span.attributes ?? []).map(({ key, value }) => [
                  key,
                  value.stringValue ??
                    (value.intValue === undefined ? undefined : Number(value.intValue)) ??
                    value.doubleValue ??
                    value.boolValue ??
                    '',
                ]),
              ),
            });
          }
        }
      }
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, server };
}

let receiver: Awaited<ReturnType<typeof startReceiver>>;
let redis: TestRedisServer;
let up: ChildProcess;
let routerUrl: string;
let prometheusUrl: string | null = null;
/** The processes `up --observe`'s Prometheus scraped (tandem_process of each healthy target). */
let scraped: string[] = [];
const requestIds: string[] = [];
/** The trace id this test sends in a traceparent header with the last request. */
const clientTraceId = '4bf92f3577b34da6a3ce929d0e0e4736';

before(async () => {
  receiver = await startReceiver();
  redis = await startRedisServer();
  const port = await freePort();
  routerUrl = `http://127.0.0.1:${port}`;
  up = spawn(
    join(repoRoot, 'services', 'cli', 'bin', 'tandem'),
    [
      'up',
      '--port',
      String(port),
      '--nats',
      `nats://127.0.0.1:${await freePort()}`,
      '--redis',
      redis.url,
      '--observe',
      '--prometheus-port',
      '0',
      '--scrape-interval-s',
      '1',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        LOG_LEVEL: 'warn',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '200',
      },
    },
  );
  let stderr = '';
  up.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines = createInterface({ input: up.stdout! });
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => {
      const prometheus = /^prometheus: (http:\/\/127\.0\.0\.1:\d+) /.exec(line);
      if (prometheus !== null) prometheusUrl = prometheus[1] ?? null;
      if (line.startsWith('tandem is up:')) resolve();
    });
    up.once('exit', (code) => reject(new Error(`tandem up exited (${code}): ${stderr}`)));
  });
  // --observe: its Prometheus finds and scrapes the router and both workers.
  const deadline = Date.now() + 20_000;
  while (prometheusUrl !== null && scraped.length < 3 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent('up == 1')}`);
    const body = (await response.json()) as { data: { result: { metric: Record<string, string> }[] } };
    scraped = body.data.result.map((series) => series.metric.tandem_process ?? '').sort();
  }
  // Prompts long enough to go through the prefill worker; the last one continues a client's trace.
  for (let i = 0; i < 4; i++) {
    const requestId = `trace-${process.pid}-${i}`;
    requestIds.push(requestId);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': requestId };
    if (i === 3) headers.traceparent = `00-${clientTraceId}-00f067aa0ba902b7-01`;
    const response = await fetch(`${routerUrl}/v1/completions`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        model: 'tandem-demo-code',
        prompt: Array.from({ length: 80 }, (_, t) => 20 + ((t * 31 + i * 577) % 3000)),
        max_tokens: 6,
        temperature: 0.5,
        ignore_eos: true,
        stream: i % 2 === 0,
      }),
    });
    assert.equal(response.status, 200, await response.text());
  }
  // SIGTERM: each process flushes its spans on the way out.
  const exited = once(up, 'exit');
  up.kill('SIGTERM');
  await exited;
});

after(async () => {
  if (up !== undefined && up.exitCode === null && up.signalCode === null) up.kill('SIGKILL');
  await redis?.stop();
  receiver?.server.close();
});

function spansOf(traceId: string): ReceivedSpan[] {
  return receiver.spans.filter((span) => span.traceId === traceId);
}

function one(spans: ReceivedSpan[], service: string, name: string, kind?: number): ReceivedSpan {
  const found = spans.filter(
    (s) => s.service === service && s.name === name && (kind === undefined || s.kind === kind),
  );
  assert.equal(found.length, 1, `${service} ${name}: ${found.length} spans`);
  return found[0]!;
}

test('tandem up --observe prints its Prometheus, which scrapes the router and both workers', () => {
  assert.notEqual(prometheusUrl, null, 'no prometheus line');
  assert.deepEqual(scraped, ['decode', 'prefill', 'router']);
});

const SERVER = 2;
const CLIENT = 3;

test('one trace per request, the router HTTP span its root (or the client span it continues)', () => {
  const httpSpans = receiver.spans.filter(
    (s) => s.service === 'tandem-router' && s.name === 'POST /v1/completions',
  );
  assert.equal(httpSpans.length, requestIds.length);
  const traceIds = new Set(httpSpans.map((s) => s.traceId));
  assert.equal(traceIds.size, requestIds.length, 'one trace per request');
  assert.ok(traceIds.has(clientTraceId), "the client's traceparent is continued");
  // Every worker span of a request's calls belongs to one of these traces (other RPCs, like the
  // router's Info probes, are traces of their own).
  const workerSpans = receiver.spans.filter(
    (s) =>
      s.service !== 'tandem-router' &&
      (s.name.endsWith('/Generate') || s.name.endsWith('/Prefill') || !s.name.includes('/')),
  );
  assert.ok(workerSpans.length > 0);
  for (const span of workerSpans)
    assert.ok(traceIds.has(span.traceId), `${span.service} ${span.name} outside the requests' traces`);
});

test('each trace is connected across router, decode and prefill, with the spans and attributes of each hop', () => {
  const httpSpans = receiver.spans.filter(
    (s) => s.service === 'tandem-router' && s.name === 'POST /v1/completions',
  );
  for (const http of httpSpans) {
    const spans = spansOf(http.traceId);
    assert.deepEqual([...new Set(spans.map((s) => s.service))].sort(), [
      'tandem-decode',
      'tandem-prefill',
      'tandem-router',
    ]);
    // Connected: every span's parent is in the trace, except the root (whose parent is the client's).
    const ids = new Set(spans.map((s) => s.spanId));
    const roots = spans.filter((s) => !ids.has(s.parentSpanId));
    assert.deepEqual(
      roots.map((s) => s.name),
      ['POST /v1/completions'],
      'one root: the HTTP span',
    );
    assert.equal(http.kind, SERVER);
    const requestId = http.attributes.get('gen_ai.response.id');
    assert.ok(typeof requestId === 'string' && requestIds.includes(requestId));
    assert.equal(http.parentSpanId !== '', http.traceId === clientTraceId);
    // GenAI semantic conventions on the HTTP span.
    assert.equal(http.attributes.get('gen_ai.operation.name'), 'text_completion');
    assert.equal(http.attributes.get('gen_ai.request.model'), 'tandem-demo-code');
    assert.equal(http.attributes.get('gen_ai.request.max_tokens'), 6);
    assert.equal(http.attributes.get('gen_ai.request.temperature'), 0.5);
    assert.equal(http.attributes.get('gen_ai.usage.input_tokens'), 80);
    assert.equal(http.attributes.get('gen_ai.usage.output_tokens'), 6);
    assert.equal(http.attributes.get('http.response.status_code'), 200);

    // Router: routing (decision terms) -> the Generate call.
    const route = one(spans, 'tandem-router', 'tandem.route');
    assert.equal(route.parentSpanId, http.spanId);
    assert.equal(route.attributes.get('tandem.route.policy'), 'cache_aware');
    const decodeId = route.attributes.get('tandem.route.worker');
    assert.match(String(decodeId), /decode/);
    assert.equal(typeof route.attributes.get(`tandem.route.candidate.${decodeId}.cost`), 'number');
    assert.equal(typeof route.attributes.get(`tandem.route.candidate.${decodeId}.prefillMs`), 'number');
    assert.equal(route.attributes.get('tandem.prefill.type'), 'remote');
    const generateCall = one(spans, 'tandem-router', 'tandem.worker.v1.Worker/Generate', CLIENT);
    assert.equal(generateCall.parentSpanId, route.spanId);

    // Decode worker: Generate -> queue, prefill (the Prefill call inside), decode.
    const generate = one(spans, 'tandem-decode', 'tandem.worker.v1.Worker/Generate', SERVER);
    assert.equal(generate.parentSpanId, generateCall.spanId);
    assert.equal(generate.attributes.get('gen_ai.request.model'), 'tandem-demo-code');
    assert.equal(generate.attributes.get('gen_ai.usage.input_tokens'), 80);
    assert.equal(generate.attributes.get('gen_ai.usage.output_tokens'), 6);
    assert.equal(generate.attributes.get('tandem.prefill.decision'), 'remote');
    for (const phase of ['tandem.queue', 'tandem.prefill', 'tandem.decode']) {
      assert.equal(one(spans, 'tandem-decode', phase).parentSpanId, generate.spanId, phase);
    }
    const prefillPhase = one(spans, 'tandem-decode', 'tandem.prefill');
    assert.equal(prefillPhase.attributes.get('tandem.prefill.mode'), 'remote');
    assert.match(String(prefillPhase.attributes.get('tandem.prefill.worker')), /^127\.0\.0\.1:\d+$/);
    const prefillCall = one(spans, 'tandem-decode', 'tandem.prefill.v1.Prefill/Prefill', CLIENT);
    assert.equal(prefillCall.parentSpanId, prefillPhase.spanId);

    // Prefill worker: Prefill -> queue, compute (per-layer KV pushes inside), commit.
    const prefill = one(spans, 'tandem-prefill', 'tandem.prefill.v1.Prefill/Prefill', SERVER);
    assert.equal(prefill.parentSpanId, prefillCall.spanId);
    assert.equal(one(spans, 'tandem-prefill', 'tandem.queue').parentSpanId, prefill.spanId);
    const compute = one(spans, 'tandem-prefill', 'tandem.prefill.compute');
    assert.equal(compute.parentSpanId, prefill.spanId);
    const pushes = spans.filter((s) => s.service === 'tandem-prefill' && s.name === 'tandem.kv.push');
    assert.ok(pushes.length >= 6, `one push per layer at least (6 layers): ${pushes.length}`);
    const layers = new Set(pushes.map((s) => s.attributes.get('tandem.kv.layers')));
    for (const layer of ['0', '1', '2', '3', '4', '5'])
      assert.ok(layers.has(layer), `layer ${layer} pushed on its own`);
    for (const push of pushes) {
      assert.equal(push.parentSpanId, compute.spanId);
      assert.ok(Number(push.attributes.get('tandem.kv.bytes')) > 0);
    }
    const commit = one(spans, 'tandem-prefill', 'tandem.kv.commit');
    assert.ok(
      [compute.spanId, ...spans.filter((s) => s.name === 'tandem.kv.finish').map((s) => s.spanId)].includes(
        commit.parentSpanId,
      ),
    );
  }
});
