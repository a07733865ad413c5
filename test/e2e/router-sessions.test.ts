// Session affinity, priority classes and the step-cost fit through a real router over HTTP: 2
// unified worker processes, NATS, Redis. A session stays on its worker even when its next prompt's
// prefix is cached on the other; the OpenAI `user` field is a session too; the x-priority class
// and the queue time are in the routing record; and once the workers have reported their fitted
// step costs, every candidate's record shows the fit and its error.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { seededRandom } from '@tandem/common';
import type { RouterApp } from '@tandem/router';
import {
  fixturesDir,
  startBackplane,
  startRouter,
  startWorker,
  type WorkerProcess,
  waitForWorkers,
} from './router-cluster.ts';

const modelDir = join(fixturesDir, 'tiny-llama');
const model = 'tiny-llama';

interface RoutingRecord {
  workerId: string;
  session?: { key: string; previousWorkerId: string | null; outcome: string; reason: string | null };
  admission?: { priority: string; queuedMs: number };
  candidates: { workerId: string; terms: Record<string, number>; excluded: string | null }[];
}

let counter = 0;

async function complete(
  router: RouterApp,
  prompt: number[],
  headers: Record<string, string> = {},
  extra: Record<string, unknown> = {},
): Promise<RoutingRecord> {
  const requestId = `session-${process.pid}-${++counter}`;
  const response = await fetch(`${router.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...headers },
    body: JSON.stringify({ model, prompt, max_tokens: 2, temperature: 0, ...extra }),
  });
  assert.equal(response.status, 200, await response.text());
  const record = (await (await fetch(`${router.url}/debug/routing/${requestId}`)).json()) as {
    decisions: RoutingRecord[];
  };
  return record.decisions.at(-1)!;
}

describe('sessions, priorities and fitted costs through the router', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  const workers: WorkerProcess[] = [];
  let router: RouterApp;
  const random = seededRandom(7);
  const tokens = (length: number): number[] => Array.from({ length }, () => 3 + Math.floor(random() * 500));

  before(async () => {
    backplane = await startBackplane();
    for (const workerId of ['sess-a', 'sess-b'])
      workers.push(
        await startWorker({ modelDir, workerId, natsUrl: backplane.nats.url, redisUrl: backplane.redis.url }),
      );
    router = await startRouter(modelDir, backplane, { replicaId: 'sessions' });
    await waitForWorkers(router, 2);
  });

  after(async () => {
    await router?.close();
    await Promise.all(workers.map((worker) => worker.stop()));
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  test('a session stays on its worker although its next prefix is cached on the other', async () => {
    const first = await complete(router, tokens(64), { 'x-session-id': 'chat-1' });
    assert.equal(first.session?.outcome, 'new');
    const other = first.workerId === 'sess-a' ? 'sess-b' : 'sess-a';
    // Put a prefix on the other worker (a session of its own pinned there), then send it in chat-1.
    const prefix = tokens(128);
    let placed = await complete(router, [...prefix, ...tokens(8)], { 'x-session-id': 'pin' });
    for (let i = 0; placed.workerId !== other && i < 8; i++)
      placed = await complete(router, [...tokens(128), ...tokens(8)], { 'x-session-id': `pin-${i}` });
    assert.equal(placed.workerId, other, 'a prefix landed on the other worker');
    const again = await complete(router, [...prefix, ...tokens(8)], { 'x-session-id': 'chat-1' });
    assert.equal(again.workerId, first.workerId);
    assert.equal(again.session?.outcome, 'sticky');
    assert.equal(again.session?.previousWorkerId, first.workerId);
    // Without the session the same prefix goes to its holder.
    const free = await complete(router, [...prefix, ...tokens(8)]);
    assert.equal(free.workerId, other);
    assert.equal(free.session, undefined);
  });

  test("the OpenAI 'user' field is a session key too", async () => {
    const first = await complete(router, tokens(48), {}, { user: 'alice' });
    assert.equal(first.session?.key, 'user:alice');
    for (let i = 0; i < 3; i++) {
      const next = await complete(router, tokens(48), {}, { user: 'alice' });
      assert.equal(next.workerId, first.workerId);
      assert.equal(next.session?.outcome, 'sticky');
    }
  });

  test('the priority class and the time queued are in the routing record', async () => {
    const high = await complete(router, tokens(32), { 'x-priority': 'high' });
    assert.equal(high.admission?.priority, 'high');
    assert.ok(high.admission!.queuedMs >= 0);
    assert.equal((await complete(router, tokens(32))).admission?.priority, 'normal');
  });

  test("once the workers report their fitted step costs, each candidate's record shows the fit", async () => {
    let record: RoutingRecord | null = null;
    // Load reports come every second: requests until a decision saw both fits.
    const fitted = (r: RoutingRecord | null): boolean =>
      r?.candidates.every((c) => c.terms.fitSteps !== undefined) ?? false;
    for (let i = 0; i < 60 && !fitted(record); i++) {
      record = await complete(router, tokens(96));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(record !== null);
    for (const candidate of record.candidates) {
      assert.ok(candidate.terms.fitSteps! >= 8, JSON.stringify(candidate.terms));
      assert.ok(Number.isFinite(candidate.terms.fitPrefillMsPerToken));
      assert.ok(candidate.terms.fitRSquared! <= 1);
      assert.ok(candidate.terms.fitRmseMs! >= 0);
      assert.ok(candidate.terms.costFromFit === 0 || candidate.terms.costFromFit === 1);
    }
  });
});
