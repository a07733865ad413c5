// The whole loop on a fake API server: signals -> decision -> Scale writes, the least-loaded
// worker drained on the way down, every decision counted with its reason on /metrics.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { Logger, startMetricsServer } from '@tandem/common';
import { defaultPlannerConfig } from '../src/config.ts';
import { Planner } from '../src/decide.ts';
import { KubernetesScaler } from '../src/kubernetes-scaler.ts';
import { PlannerLoop, pickVictims } from '../src/planner-loop.ts';
import { PlannerMetrics } from '../src/planner-metrics.ts';
import { type ClusterSignals, emptySignals, type PoolName, type SignalSource } from '../src/types.ts';
import { FakeKubeApi } from './fake-kube-api.ts';

/** Signals set by the test, the way the simulator in bench/planner feeds them. */
class ScriptedSignals implements SignalSource {
  signals: ClusterSignals = emptySignals();
  loads: Record<PoolName, Map<string, number>> = { prefill: new Map(), decode: new Map() };
  async read(): Promise<ClusterSignals> {
    return this.signals;
  }
  async workerLoads(pool: PoolName): Promise<Map<string, number>> {
    return this.loads[pool];
  }
}

let api: FakeKubeApi;
let scaler: KubernetesScaler;

before(async () => {
  api = await FakeKubeApi.start();
  for (const [component, replicas] of [
    ['prefill', 1],
    ['decode', 2],
  ] as const) {
    api.addDeployment({
      namespace: 'llm',
      name: `tandem-${component}`,
      replicas,
      labels: { app: 'tandem', component },
      readyAfterMs: 30,
      // Long enough that a loaded machine cannot miss the draining pod between two polls.
      drainMs: 5_000,
    });
  }
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(api.kubeconfig());
  scaler = await KubernetesScaler.start({
    kubeConfig,
    namespace: 'llm',
    deployments: { prefill: 'tandem-prefill', decode: 'tandem-decode' },
    logger: new Logger({ level: 'error' }),
  });
});

after(async () => {
  await scaler.close();
  await api.close();
});

test('victims are the least-loaded workers, ties broken by name', () => {
  const loads = new Map([
    ['d-3', 4],
    ['d-1', 0],
    ['d-2', 0],
    ['d-4', 9],
  ]);
  assert.deepEqual(pickVictims(loads, 2), ['d-1', 'd-2']);
  assert.deepEqual(pickVictims(loads, 0), []);
});

test('a burst scales both pools up, calm drains the idlest decode worker, /metrics tells why', async () => {
  const lines: string[] = [];
  const metrics = new PlannerMetrics();
  const signals = new ScriptedSignals();
  const loop = new PlannerLoop({
    planner: new Planner({
      ...defaultPlannerConfig,
      prefillTokensPerReplicaS: 10_000,
      decodeProfile: [{ context: 1000, tokensPerS: 1_000 }],
      targetUtilization: 1,
      upCooldownS: 0,
      downCooldownS: 0,
      downStabilizationS: 30,
      settleS: 0,
      lookaheadS: 0,
    }),
    signals,
    scaler,
    metrics,
    logger: new Logger({ level: 'info', write: (line) => lines.push(line) }),
  });
  const server = await startMetricsServer(metrics.registry, { host: '127.0.0.1', port: 0 });
  try {
    const calm = {
      ...emptySignals(),
      ttftP90S: 0.1,
      itlP90S: 0.01,
      queueP90S: 0,
      prefillTokensPerS: 5_000,
      decodeTokensPerS: 500,
      queuedPrefillTokens: 0,
      kvUsageSum: 0.2,
      kvUsageMax: 0.1,
      decodeRequestsWaiting: 0,
    };
    signals.signals = { ...calm, prefillTokensPerS: 25_000, decodeTokensPerS: 3_500 };
    const burst = await loop.tick(0);
    assert.deepEqual([burst?.prefill.to, burst?.prefill.reason], [3, 'prefill_load']);
    assert.deepEqual([burst?.decode.to, burst?.decode.reason], [4, 'decode_load']);
    assert.equal(api.spec('llm', 'tandem-prefill'), 3);
    assert.equal(api.spec('llm', 'tandem-decode'), 4);
    const until = async (check: () => Promise<boolean>) => {
      for (let i = 0; i < 250 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
    };
    // All four ready: the ReplicaSet removes a pod still starting before any deletion cost counts.
    await until(async () => scaler.pods('decode').ready.length === 4);
    const decodePods = scaler.pods('decode').alive.sort();
    assert.equal(decodePods.length, 4);
    // Demand falls to one decode replica's worth; one worker is idle, the others busy.
    signals.signals = { ...calm, decodeTokensPerS: 900 };
    signals.loads.decode = new Map(decodePods.map((name, i) => [name, i === 1 ? 0 : 5 + i]));
    const idle = decodePods[1] ?? '';
    const first = await loop.tick(10);
    assert.deepEqual([first?.decode.direction, first?.decode.reason], ['hold', 'stabilizing']);
    const down = await loop.tick(40);
    assert.deepEqual([down?.decode.direction, down?.decode.to, down?.decode.reason], ['down', 3, 'idle']);
    await until(async () => scaler.pods('decode').terminating.includes(idle));
    assert.deepEqual(scaler.pods('decode').terminating, [idle], 'the idle worker drains, not another');
    // While it drains the next step waits (a new window starts after each scale event).
    await loop.tick(80);
    const draining = await loop.tick(115);
    assert.deepEqual([draining?.decode.direction, draining?.decode.reason], ['hold', 'draining']);
    const text = await (await fetch(`http://${server.address}/metrics`)).text();
    assert.match(
      text,
      /tandem_planner_decisions_total\{pool="prefill",direction="up",reason="prefill_load"\} 1/,
    );
    assert.match(text, /tandem_planner_decisions_total\{pool="decode",direction="down",reason="idle"\} 1/);
    assert.match(
      text,
      /tandem_planner_decisions_total\{pool="decode",direction="hold",reason="draining"\} [1-9]/,
    );
    assert.match(text, /tandem_planner_replicas\{pool="decode",kind="terminating"\} 1/);
    assert.match(text, /tandem_planner_signal\{name="decodeTokensPerS"\} 900/);
    const decisions = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'decision');
    assert.equal(decisions.length, 5, 'one log line per tick');
    assert.equal(decisions[2]?.decode, 'down 4->3 (idle)');
    assert.ok(lines.some((l) => l.includes('"draining"') && l.includes(idle)));
  } finally {
    await server.close();
    metrics.close();
  }
});
