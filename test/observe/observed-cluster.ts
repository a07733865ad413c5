// A disaggregated cluster under observation, for the observability test and the dashboard
// picture: nats-server and redis-server on free ports, one prefill and one decode worker process
// (each with its metrics endpoint), the router in process (small admission limits, so a burst
// gets 429s), a private Prometheus scraping all three through the router's /debug/targets with
// the rules of deploy/prometheus, and a load that exercises every panel: shared-prefix prompts
// (cache hits), streamed completions (TTFT, ITL), a steady phase and a burst past admission.
import { join } from 'node:path';
import { Logger, type RunningPrometheus, startPrometheus } from '@tandem/common';
import { defaultRouterOptions, type RouterApp } from '@tandem/router';
import {
  demoModelDir,
  repoRoot,
  startBackplane,
  startRouter,
  startWorker,
  type WorkerProcess,
  waitFor,
} from '../e2e/router-cluster.ts';

export interface ObservedCluster {
  router: RouterApp;
  prometheus: RunningPrometheus;
  workers: WorkerProcess[];
  stop(): Promise<void>;
}

export const rulesFile = join(repoRoot, 'deploy', 'prometheus', 'tandem.rules.yml');

export async function startObservedCluster(scrapeIntervalS = 1): Promise<ObservedCluster> {
  const backplane = await startBackplane();
  const start = (workerId: string, role: 'prefill' | 'decode') =>
    startWorker({
      modelDir: demoModelDir,
      workerId,
      natsUrl: backplane.nats.url,
      redisUrl: backplane.redis.url,
      extraArgs: ['--role', role, '--num-pages', '512', '--metrics-port', '0'],
    });
  // Decode first: it sees the prefill worker join.
  const decode = await start('obs-decode', 'decode');
  const prefill = await start('obs-prefill', 'prefill');
  const workers = [decode, prefill];
  const router = await startRouter(demoModelDir, backplane, {
    admission: { ...defaultRouterOptions.admission, maxConcurrent: 4, maxQueued: 4 },
  });
  await waitFor(
    'the router to know both workers with their metrics endpoints',
    () =>
      router.registry.size === 1 &&
      router.registry.prefillWorkers().length === 1 &&
      [...router.registry.all(), ...router.registry.prefillWorkers()].every((w) => w.metricsAddress !== null),
    15_000,
  );
  const prometheus = await startPrometheus(
    { routerUrl: router.url, scrapeIntervalS, ruleFiles: [rulesFile] },
    new Logger({ level: 'warn' }),
  );
  return {
    router,
    prometheus,
    workers,
    stop: async () => {
      await prometheus.stop();
      await router.close();
      await Promise.all(workers.map((worker) => worker.stop()));
      await backplane.nats.stop();
      await backplane.redis.stop();
    },
  };
}

/** Prompt of `length` token ids: a group's shared prefix, then its own tail. */
function prompt(group: number, index: number, length: number): number[] {
  const prefix = Array.from({ length: 64 }, (_, i) => 20 + ((i * 37 + group * 101) % 3000));
  const tail = Array.from(
    { length: length - 64 },
    (_, i) => 20 + ((i * 53 + index * 977 + group * 7) % 3000),
  );
  return [...prefix, ...tail];
}

/** One streamed completion; returns the HTTP status. */
async function complete(routerUrl: string, tokens: number[], maxTokens: number): Promise<number> {
  const response = await fetch(`${routerUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'tandem-demo-code',
      prompt: tokens,
      max_tokens: maxTokens,
      ignore_eos: true,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  await response.text();
  return response.status;
}

export interface LoadReport {
  startedAtS: number;
  endedAtS: number;
  statuses: Map<number, number>;
}

/**
 * Steady load for `seconds` (3 clients, prompts of 4 groups sharing a prefix) with a burst of 16
 * requests at once past the admission limit (4 running + 4 queued) at a third and at two thirds.
 */
export async function driveLoad(routerUrl: string, seconds: number): Promise<LoadReport> {
  const startedAtS = Date.now() / 1000;
  const statuses = new Map<number, number>();
  const count = (status: number): void => {
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
  };
  let seq = 0;
  const steady = async (untilMs: number): Promise<void> => {
    while (Date.now() < untilMs) {
      const n = seq++;
      count(await complete(routerUrl, prompt(n % 4, n, 96 + (n % 5) * 32), 12 + (n % 3) * 4));
    }
  };
  const burst = async (): Promise<void> => {
    const requests = Array.from({ length: 16 }, (_, i) =>
      complete(routerUrl, prompt(i % 4, 1000 + i, 160), 16),
    );
    for (const status of await Promise.all(requests)) count(status);
  };
  for (let phase = 0; phase < 3; phase++) {
    const until = Date.now() + (seconds * 1000) / 3;
    await Promise.all([steady(until), steady(until), steady(until)]);
    if (phase < 2) await burst();
  }
  return { startedAtS, endedAtS: Date.now() / 1000, statuses };
}

/** A Prometheus range query: every series' [time, value] pairs. */
export async function queryRange(
  prometheusUrl: string,
  expr: string,
  startS: number,
  endS: number,
  stepS = 1,
): Promise<{ metric: Record<string, string>; values: [number, string][] }[]> {
  const params = new URLSearchParams({
    query: expr,
    start: String(startS),
    end: String(endS),
    step: String(stepS),
  });
  const response = await fetch(`${prometheusUrl}/api/v1/query_range?${params}`);
  const body = (await response.json()) as {
    status: string;
    error?: string;
    data?: { result: { metric: Record<string, string>; values: [number, string][] }[] };
  };
  if (body.status !== 'success' || body.data === undefined) {
    throw new Error(`query failed: ${expr}: ${body.error ?? response.status}`);
  }
  return body.data.result;
}

/** A panel query as Grafana would send it, with every variable at "All". */
export function resolveVariables(expr: string, rateIntervalS: number): string {
  return expr
    .replaceAll('$__rate_interval', `${rateIntervalS}s`)
    .replaceAll('$model', '.*')
    .replaceAll('$worker', '.*');
}
