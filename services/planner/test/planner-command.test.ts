// `tandem planner` as a process, end to end: a real Prometheus scrapes the router's and
// workers' metrics (an exporter with a heavy load), the planner reads it, and scales the two
// Deployments of a fake Kubernetes API server through their Scale subresource; its /metrics
// tells why; SIGTERM stops it cleanly.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ChildServer } from '@tandem/common/testing';
import { FakeKubeApi } from './fake-kube-api.ts';
import { startPrometheus, waitForSamples } from './prometheus.ts';

const tandem = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'bin', 'tandem');
const startedS = Date.now() / 1000;
let exporter: Server;
let prometheus: ChildServer;
let api: FakeKubeApi;
let planner: ChildProcess | null = null;

before(async () => {
  // 45k uncached prompt tokens/s and 5k completion tokens/s, decode KV nearly full (mid-way
  // between replica counts, so Prometheus' rate extrapolation cannot tip the rounding).
  exporter = createServer((_request, response) => {
    const elapsed = Date.now() / 1000 - startedS;
    response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    response.end(
      [
        '# TYPE tandem_router_prompt_tokens_total counter',
        `tandem_router_prompt_tokens_total ${45_000 * elapsed}`,
        '# TYPE tandem_router_completion_tokens_total counter',
        `tandem_router_completion_tokens_total ${5_000 * elapsed}`,
        '# TYPE tandem_worker_kv_usage_ratio gauge',
        'tandem_worker_kv_usage_ratio{worker="d-0",role="decode",model="m"} 0.8',
        '# TYPE tandem_worker_requests_running gauge',
        'tandem_worker_requests_running{worker="d-0",role="decode",model="m"} 60',
        '',
      ].join('\n'),
    );
  });
  await new Promise<void>((resolve) => exporter.listen(0, '127.0.0.1', resolve));
  prometheus = await startPrometheus([`127.0.0.1:${(exporter.address() as AddressInfo).port}`]);
  api = await FakeKubeApi.start();
  for (const component of ['prefill', 'decode']) {
    api.addDeployment({
      namespace: 'llm',
      name: `tandem-${component}`,
      replicas: 1,
      labels: { 'app.kubernetes.io/instance': 'tandem', 'app.kubernetes.io/component': component },
      readyAfterMs: 50,
      drainMs: 200,
    });
  }
  await waitForSamples(`http://127.0.0.1:${prometheus.port}`, 'tandem_router_prompt_tokens_total', '10s', 10);
});

after(async () => {
  planner?.kill('SIGKILL');
  await api?.close();
  await prometheus?.stop();
  exporter?.close();
});

test('tandem planner scales both Deployments from Prometheus signals and says why', async () => {
  const kubeconfig = join(mkdtempSync(join(tmpdir(), 'tandem-kube-')), 'config');
  writeFileSync(kubeconfig, api.kubeconfig());
  const child = spawn(
    tandem,
    [
      'planner',
      ...['--prometheus', `http://127.0.0.1:${prometheus.port}`, '--kubeconfig', kubeconfig],
      ...[
        '--namespace',
        'llm',
        '--prefill-deployment',
        'tandem-prefill',
        '--decode-deployment',
        'tandem-decode',
      ],
      ...['--window', '10s', '--interval-s', '1', '--metrics-host', '127.0.0.1', '--metrics-port', '0'],
      ...['--prefill-tokens-per-s', '10000', '--decode-profile', '1000:2000', '--target-utilization', '1'],
      ...['--selector', 'job="tandem"', '--model', 'm'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } },
  );
  planner = child;
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  const deadline = Date.now() + 30_000;
  // 45k / 10k -> 5 prefill; 5k / 2k -> 3 decode (KV: 0.8 / 0.7 -> 2)
  while (api.spec('llm', 'tandem-prefill') !== 5 || api.spec('llm', 'tandem-decode') !== 3) {
    assert.ok(Date.now() < deadline, `no scale-up in 30 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const scaleWrites = api.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/scale'));
  assert.ok(scaleWrites.length >= 2);
  const started = /"msg":"planner started".*"metricsPort":(\d+)/.exec(log);
  assert.ok(started, log);
  const metrics = await (await fetch(`http://127.0.0.1:${started[1]}/metrics`)).text();
  assert.match(
    metrics,
    /tandem_planner_decisions_total\{pool="prefill",direction="up",reason="prefill_load"\} 1/,
  );
  assert.match(
    metrics,
    /tandem_planner_decisions_total\{pool="decode",direction="up",reason="decode_load"\} 1/,
  );
  assert.match(log, /"msg":"decision".*"prefill":"up 1->5 \(prefill_load\)"/);
  // The common metrics server: the process series too, and /healthz for the chart's probes.
  assert.match(metrics, /^process_start_time_seconds \d+$/m);
  assert.equal((await fetch(`http://127.0.0.1:${started[1]}/healthz`)).status, 200);
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) =>
    child.once('exit', (exitCode) => resolve(exitCode)),
  );
  assert.equal(code, 0, log);
  planner = null;
});

test('tandem planner refuses a bad flag, and says what is missing', async () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(tandem, ['planner', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.once('exit', (code) => resolve({ code, stderr }));
    });
  const missing = await run(['--prometheus', 'http://127.0.0.1:1']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--prefill-deployment is required/);
  const bad = await run(['--ratio-min', '3', '--ratio-max', '1']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /ratioMin \(3\) must be <= ratioMax \(1\)/);
  const typo = await run(['--prefill-min', 'two']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /--prefill-min must be an integer, got 'two'/);
  const unknown = await run(['--prefill-minimum', '2']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /prefill-minimum/);
  assert.match(unknown.stderr, /usage: tandem planner/);
});
