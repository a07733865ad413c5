// Graceful drain under load (issue 15: SIGTERM on a worker loses no request, and the router stops
// sending to it at once). Real processes: a router, worker processes, NATS and Redis; a steady
// stream of concurrent streaming completions; SIGTERM one worker while its own gauge says it is
// working. Every request must end with finish_reason length, exactly max_tokens tokens and the
// greedy text of an undisturbed run (requests caught before their first token are retried
// elsewhere); the router must route nothing to the worker after it heard its LEAVE announcement;
// the worker must finish what it runs, then exit 0.
// Layouts: 2 unified workers; 2 decode workers + a prefill worker (a decode worker drains); 2
// decode workers + 2 prefill workers (a prefill worker drains while it computes a prompt: the
// prompt lands, no decode worker sees a failed prefill).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { basename, join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import type { RouterApp } from '@tandem/router';
import OpenAI from 'openai';
import {
  demoModelDir,
  fixturesDir,
  startBackplane,
  startRouter,
  startWorker,
  type WorkerProcess,
  waitFor,
  waitForWorkers,
} from './router-cluster.ts';

const tinyLlama = join(fixturesDir, 'tiny-llama');
const extras = (body: Record<string, unknown>) => body as Record<string, never>;
const maxTokens = 160;
const concurrency = 6;
const shortPrompts = [
  'Once upon a time, in a cluster far away,',
  'The prefill worker computes the prompt; the decode worker writes',
  'def fibonacci(n):',
  'A list of things that drain gracefully:',
];

interface Outcome {
  requestId: string;
  prompt: string;
  text: string;
  finishReason: string | null;
  completionTokens: number | null;
  error: string | null;
  endedAtMs: number;
}

interface DecisionRecord {
  workerId: string | null;
  atMs: number;
  reason: string;
  prefill: { type: string; workerId?: string } | null;
}

/** A router of one model, and how its clients name it. */
interface Served {
  router: RouterApp;
  model: string;
}

function client({ router }: Served): OpenAI {
  return new OpenAI({ baseURL: `${router.url}/v1`, apiKey: 'unused', maxRetries: 0 });
}

async function greedy(served: Served, prompt: string): Promise<string> {
  const completion = await client(served).completions.create({
    model: served.model,
    prompt,
    max_tokens: maxTokens,
    temperature: 0,
    ...extras({ ignore_eos: true }),
  });
  return completion.choices[0]?.text ?? '';
}

async function streamOne(served: Served, requestId: string, prompt: string): Promise<Outcome> {
  const outcome: Outcome = {
    requestId,
    prompt,
    text: '',
    finishReason: null,
    completionTokens: null,
    error: null,
    endedAtMs: 0,
  };
  try {
    const stream = await client(served).completions.create(
      {
        model: served.model,
        prompt,
        max_tokens: maxTokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
        ...extras({ ignore_eos: true }),
      },
      { headers: { 'x-request-id': requestId } },
    );
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        outcome.text += choice.text;
        if (choice.finish_reason !== null) outcome.finishReason = choice.finish_reason;
      }
      if (chunk.usage) outcome.completionTokens = chunk.usage.completion_tokens;
    }
  } catch (error) {
    outcome.error = String(error);
  }
  outcome.endedAtMs = Date.now();
  return outcome;
}

/** `concurrency` loops of streaming requests until `stop()`; `outcomes` fills as they end. */
function steadyLoad(served: Served, tag: string, prompts: string[]) {
  let stopping = false;
  let next = 0;
  const outcomes: Outcome[] = [];
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopping) {
      const i = next++;
      outcomes.push(await streamOne(served, `${tag}-${i}`, prompts[i % prompts.length] ?? ''));
    }
  });
  return {
    outcomes,
    stop: async (): Promise<Outcome[]> => {
      stopping = true;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

/** The sum of a metric's series (those whose labels contain `labels`, when given). */
function metricSum(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if ((line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && line.includes(labels))
      sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

/** The /metrics URL of every process the router knows (GET /debug lists them), by id. */
async function metricsUrls(router: RouterApp): Promise<Map<string, { role: string; url: string }>> {
  const { processes } = (await (await fetch(`${router.url}/debug`)).json()) as {
    processes: Array<{ id: string; role: string; metricsAddress: string | null }>;
  };
  return new Map(
    processes
      .filter((p) => p.metricsAddress !== null)
      .map((p) => [p.id, { role: p.role, url: `http://${p.metricsAddress}/metrics` }]),
  );
}

async function decisionsOf(router: RouterApp, requestId: string): Promise<DecisionRecord[]> {
  const response = await fetch(`${router.url}/debug/routing/${requestId}`);
  assert.equal(response.status, 200, `routing record of ${requestId}`);
  return ((await response.json()) as { decisions: DecisionRecord[] }).decisions;
}

describe('SIGTERM on a worker under load', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  let started: WorkerProcess[] = [];
  let router: RouterApp | null = null;

  before(async () => {
    backplane = await startBackplane();
  });

  /** Each layout's cluster goes away before the next starts (one model at a time). */
  const stopCluster = async () => {
    await router?.close();
    router = null;
    await Promise.all(started.map((worker) => worker.stop()));
    started = [];
  };
  afterEach(stopCluster);

  after(async () => {
    await stopCluster();
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  const start = (
    modelDir: string,
    workerId: string,
    role: 'unified' | 'decode' | 'prefill',
    extraArgs: string[] = [],
  ) =>
    startWorker({
      modelDir,
      workerId,
      natsUrl: backplane.nats.url,
      redisUrl: backplane.redis.url,
      extraArgs: ['--role', role, ...extraArgs],
    }).then((worker) => {
      started.push(worker);
      return worker;
    });

  /**
   * Runs the load, SIGTERMs `victim` once its own `busyMetric` reaches `minBusy` (work in progress
   * on it), keeps the load on until it has exited and more requests went through, then checks
   * every request and every routing decision.
   */
  async function drainUnderLoad(options: {
    served: Served;
    tag: string;
    prompts: string[];
    victim: WorkerProcess;
    /** Whether a routing decision sends work to the victim (as the decode side or the prefill side). */
    servesRequest: (decision: DecisionRecord) => boolean;
    busyMetric: string;
    minBusy: number;
  }): Promise<{ outcomes: Outcome[]; servedAcrossSigterm: number; leftAfterMs: number }> {
    const { served, tag, prompts, victim, servesRequest, busyMetric, minBusy } = options;
    const expected = new Map<string, string>();
    for (const prompt of prompts) expected.set(prompt, await greedy(served, prompt));

    let leftAtMs: number | null = null;
    let leftReason = '';
    served.router.registry.onEvent((event) => {
      if (event.type === 'left' && event.workerId === victim.workerId && leftAtMs === null) {
        leftAtMs = Date.now();
        leftReason = event.reason;
      }
    });
    const victimMetrics = (await metricsUrls(served.router)).get(victim.workerId)?.url;
    assert.ok(victimMetrics, `${victim.workerId} announced its metrics endpoint`);
    const load = steadyLoad(served, tag, prompts);
    let sigtermAtMs = 0;
    for (let polls = 0; sigtermAtMs === 0; polls++) {
      assert.ok(polls < 4000, 'the victim got work within 20 s');
      const text = await (await fetch(victimMetrics)).text();
      if (load.outcomes.length >= concurrency && metricSum(text, busyMetric) >= minBusy) {
        sigtermAtMs = Date.now();
        victim.child.kill('SIGTERM');
      } else {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
    const [exitCode] = (await once(victim.child, 'exit')) as [number | null];
    started = started.filter((w) => w !== victim);
    // The others take the whole load for a while.
    const afterExit = load.outcomes.length;
    await waitFor('requests after the drain', () => load.outcomes.length >= afterExit + concurrency, 60_000);
    const outcomes = await load.stop();

    assert.equal(exitCode, 0, `the drained worker exits 0:\n${victim.output().slice(-2000)}`);
    assert.ok(leftAtMs !== null, 'the router heard the worker leave');
    assert.equal(leftReason, 'announced leave', 'the router dropped it on its LEAVE, not on a timeout');
    for (const outcome of outcomes) {
      assert.equal(outcome.error, null, `${outcome.requestId}: ${outcome.error}`);
      assert.equal(outcome.finishReason, 'length', outcome.requestId);
      assert.equal(outcome.completionTokens, maxTokens, outcome.requestId);
      assert.equal(outcome.text, expected.get(outcome.prompt), `${outcome.requestId}: the greedy text`);
    }
    let servedAcrossSigterm = 0;
    for (const outcome of outcomes) {
      const decisions = await decisionsOf(served.router, outcome.requestId);
      for (const decision of decisions.filter(servesRequest)) {
        assert.ok(
          decision.atMs <= leftAtMs,
          `${outcome.requestId} went to ${victim.workerId} ${decision.atMs - leftAtMs} ms after it left`,
        );
      }
      // Sent to the victim before SIGTERM, finished after it, with no failover.
      const last = decisions.at(-1);
      if (
        last !== undefined &&
        servesRequest(last) &&
        last.atMs < sigtermAtMs &&
        outcome.endedAtMs > sigtermAtMs &&
        decisions.every((d) => d.reason !== 'failover')
      )
        servedAcrossSigterm++;
    }
    process.stdout.write(
      `# ${tag}: ${outcomes.length} requests, ${servedAcrossSigterm} sent to ${victim.workerId} before its SIGTERM and finished after it; LEAVE heard ${leftAtMs - sigtermAtMs} ms after SIGTERM\n`,
    );
    return { outcomes, servedAcrossSigterm, leftAfterMs: leftAtMs - sigtermAtMs };
  }

  test('unified workers: running requests finish on the draining worker, new ones go to the other', async () => {
    const [victim] = await Promise.all([
      start(tinyLlama, 'drain-u0', 'unified'),
      start(tinyLlama, 'drain-u1', 'unified'),
    ]);
    assert.ok(victim);
    router = await startRouter(tinyLlama, backplane, { policy: 'round_robin' });
    await waitForWorkers(router, 2);
    const { servedAcrossSigterm } = await drainUnderLoad({
      served: { router, model: 'tiny-llama' },
      tag: 'drain-unified',
      prompts: shortPrompts,
      victim,
      servesRequest: (d) => d.workerId === victim.workerId,
      busyMetric: 'tandem_worker_requests_running',
      minBusy: 2,
    });
    assert.ok(servedAcrossSigterm > 0, 'requests streamed on the worker through its SIGTERM');
  });

  test('disaggregated: a decode worker drains; its streams finish, new ones go to the other', async () => {
    const [victim] = await Promise.all([
      start(tinyLlama, 'drain-d0', 'decode'),
      start(tinyLlama, 'drain-d1', 'decode'),
      start(tinyLlama, 'drain-p0', 'prefill'),
    ]);
    assert.ok(victim);
    router = await startRouter(tinyLlama, backplane, { policy: 'round_robin', disaggThreshold: 0 });
    await waitForWorkers(router, 2);
    await waitFor('the prefill worker', () => router?.registry.prefillWorkers().length === 1, 15_000);
    const { servedAcrossSigterm } = await drainUnderLoad({
      served: { router, model: 'tiny-llama' },
      tag: 'drain-decode',
      prompts: shortPrompts,
      victim,
      servesRequest: (d) => d.workerId === victim.workerId,
      busyMetric: 'tandem_worker_requests_running',
      minBusy: 2,
    });
    assert.ok(servedAcrossSigterm > 0, 'requests streamed on the decode worker through its SIGTERM');
  });

  test('disaggregated: a prefill worker drains while it computes a prompt; the prompt lands', async () => {
    // The demo model and long prompts in small chunks: a prefill takes long enough (many steps)
    // that SIGTERM finds one running, and it must finish, not fail over.
    const slowPrefill = ['--prefill-chunk', '32'];
    const [victim] = await Promise.all([
      start(demoModelDir, 'drain-p0', 'prefill', slowPrefill),
      start(demoModelDir, 'drain-p1', 'prefill', slowPrefill),
      start(demoModelDir, 'drain-d0', 'decode'),
      start(demoModelDir, 'drain-d1', 'decode'),
    ]);
    assert.ok(victim);
    router = await startRouter(demoModelDir, backplane, { policy: 'round_robin', disaggThreshold: 0 });
    await waitForWorkers(router, 2);
    await waitFor('both prefill workers', () => router?.registry.prefillWorkers().length === 2, 15_000);
    await drainUnderLoad({
      served: { router, model: basename(demoModelDir) },
      tag: 'drain-prefill',
      prompts: shortPrompts.map((p) => `${p} `.repeat(30)),
      victim,
      servesRequest: (d) => d.prefill?.type === 'remote' && d.prefill.workerId === victim.workerId,
      busyMetric: 'tandem_prefill_requests_running',
      minBusy: 1,
    });
    // No decode worker saw a remote prefill fail, or computed a prompt itself instead.
    const decodes = [...(await metricsUrls(router)).entries()].filter(([, p]) => p.role === 'decode');
    assert.equal(decodes.length, 2);
    for (const [id, { url }] of decodes) {
      const text = await (await fetch(url)).text();
      assert.equal(metricSum(text, 'tandem_kv_transfer_failures_total'), 0, `${id}: failed remote prefills`);
      assert.equal(metricSum(text, 'tandem_decode_prefills_total', 'where="local_fallback"'), 0, id);
      assert.ok(metricSum(text, 'tandem_decode_prefills_total', 'where="remote"') > 0, id);
    }
  });
});
