// Disaggregation between real worker processes (`tandem worker --role prefill|decode`): the
// decode worker's Generate names the prefill worker; KV moves between the two processes over
// kvtransfer. Greedy PD output equals the decode worker's own local prefill; kill -9 of P once
// D's receiver has landed part of the KV (Info.kv_bytes_in_flight) is survived; kill -9 of D
// mid-transfer or while tokens stream is reported to the client within 2 s with nothing held on
// P; mixed cancelled requests leave no page referenced on either worker.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGrpcClient, type GrpcClient } from '@tandem/common';
import { Worker } from '@tandem/proto';
import { generate, greedyRequest, startWorkerProcess, type WorkerProcess } from '@tandem/worker/testing';
import { pdFixture } from './pd-helpers.ts';

const noServices = ['--nats', 'none', '--redis', 'none', '--threads', '1', '--num-pages', '512'];

interface Pd {
  prefill: WorkerProcess;
  decode: WorkerProcess;
  p: GrpcClient<typeof Worker>;
  d: GrpcClient<typeof Worker>;
  stop(): Promise<void>;
}

async function startPd(modelDir: string, prefillArgs: string[] = []): Promise<Pd> {
  const [prefill, decode] = await Promise.all([
    startWorkerProcess(['--role', 'prefill', '--model', modelDir, ...noServices, ...prefillArgs]),
    startWorkerProcess([
      '--role',
      'decode',
      '--model',
      modelDir,
      ...noServices,
      '--prefill-lease-ms',
      '20000',
    ]),
  ]);
  const p = createGrpcClient(Worker, prefill.grpcAddress);
  const d = createGrpcClient(Worker, decode.grpcAddress);
  return {
    prefill,
    decode,
    p,
    d,
    async stop() {
      p.close();
      d.close();
      await Promise.all([prefill.stop(5000), decode.stop(5000)]);
    },
  };
}

/** Waits until the worker runs nothing, then checks every page is free or only cached. */
async function assertIdleWithNoHeldPage(client: GrpcClient<typeof Worker>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const load = (await client.info({})).load!;
    const idle = load.numRunning === 0 && load.numWaiting === 0;
    if (idle && load.numFreePages + load.numEvictablePages === load.numTotalPages) return;
    if (Date.now() > deadline) assert.fail(`${what} still holds pages: ${JSON.stringify(load)}`);
    await sleep(20);
  }
}

async function numCachedBlocks(client: GrpcClient<typeof Worker>): Promise<number> {
  let numBlocks = 0;
  for await (const chunk of client.dumpBlocks({})) numBlocks += chunk.blocks.length;
  return numBlocks;
}

function promptOf(length: number, seed: number, vocab = 480): number[] {
  return Array.from({ length }, (_, i) => 10 + ((i * 7919 + seed * 104729) % vocab));
}

describe('PD worker processes on tiny-llama', () => {
  const fixture = pdFixture('tiny-llama');
  let pd: Pd;
  before(async () => {
    pd = await startPd(fixture.dir);
  });
  after(async () => {
    await pd?.stop();
  });

  test('roles are reported; PD == local prefill on every case; P computed and cached the prompt', async () => {
    assert.equal((await pd.p.info({})).role, 2); // ROLE_PREFILL
    assert.equal((await pd.d.info({})).role, 3); // ROLE_DECODE
    for (const [i, testCase] of fixture.cases.entries()) {
      const local = await generate(pd.d, {
        ...greedyRequest(`l${i}`, testCase.prompt_ids),
        cacheNamespace: 'local',
      });
      const blocksBefore = await numCachedBlocks(pd.p);
      const remote = await generate(pd.d, {
        ...greedyRequest(`r${i}`, testCase.prompt_ids),
        prefill: { address: pd.prefill.grpcAddress, requestId: `r${i}` },
      });
      assert.deepEqual(remote[0]!.tokenIds, local[0]!.tokenIds, `case ${i}`);
      // P ran the prompt: its full pages entered P's prefix cache.
      const numFullPages = Math.floor(testCase.prompt_ids.length / 16);
      assert.ok((await numCachedBlocks(pd.p)) >= blocksBefore + (numFullPages > 0 ? 1 : 0));
    }
    await assertIdleWithNoHeldPage(pd.p, 'P');
    await assertIdleWithNoHeldPage(pd.d, 'D');
  });

  test('200 mixed requests (PD and local) with random cancellations leave no page referenced', async () => {
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const runs: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const controller = new AbortController();
      const remote = random() < 0.7;
      const request = {
        ...greedyRequest(
          `mix${i}`,
          promptOf(8 + Math.floor(random() * 120), i),
          4 + Math.floor(random() * 12),
        ),
        ...(remote ? { prefill: { address: pd.prefill.grpcAddress, requestId: `mix${i}` } } : {}),
      };
      if (random() < 0.4) setTimeout(() => controller.abort(), Math.floor(random() * 80));
      runs.push(generate(pd.d, request, { signal: controller.signal }).catch(() => undefined));
      if (runs.length % 16 === 0) await Promise.all(runs.splice(0));
    }
    await Promise.all(runs);
    await assertIdleWithNoHeldPage(pd.p, 'P');
    await assertIdleWithNoHeldPage(pd.d, 'D');
  });
});

describe('PD worker processes, kill -9 (tandem-demo-code)', () => {
  const fixture = pdFixture('tandem-demo-code');
  const longPrompt = promptOf(1500, 7, 4000);

  test('P killed mid-transfer: the request still completes, equal to a local prefill', async () => {
    // Small chunks: P pushes pages after every 32 tokens, so the transfer is long under way.
    const pd = await startPd(fixture.dir, ['--prefill-chunk', '32']);
    try {
      const layout = (await pd.d.info({})).kvLayout!;
      const totalBytes =
        Math.ceil(longPrompt.length / layout.pageSize) * 2 * layout.numLayers * Number(layout.pageBytes);
      const request = {
        ...greedyRequest('p-dies', longPrompt, 8),
        prefill: { address: pd.prefill.grpcAddress, requestId: 'p-dies' },
      };
      const result = generate(pd.d, request);
      // Kill P once D's receiver has landed some of the prompt's KV bytes, but not all.
      let sawTransfer = false;
      for (;;) {
        const info = await pd.d.info({});
        const landed = Number(info.kvBytesInFlight);
        sawTransfer ||= info.kvTransfersInFlight > 0;
        if (landed > 0 && landed < totalBytes) break;
        assert.ok(
          !sawTransfer || info.kvTransfersInFlight > 0,
          'the transfer ended before P could be killed',
        );
        await sleep(2);
      }
      pd.prefill.child.kill('SIGKILL');
      const [choice] = await result;
      const local = await generate(pd.d, {
        ...greedyRequest('p-dies-local', longPrompt, 8),
        cacheNamespace: 'x',
      });
      assert.deepEqual(choice!.tokenIds, local[0]!.tokenIds);
      await assertIdleWithNoHeldPage(pd.d, 'D');
    } finally {
      await pd.stop();
    }
  });

  test('D killed while tokens stream: the client errors within 2 s and P holds no page', async () => {
    const pd = await startPd(fixture.dir);
    try {
      const request = {
        ...greedyRequest('d-dies-streaming', longPrompt, 400),
        prefill: { address: pd.prefill.grpcAddress, requestId: 'd-dies-streaming' },
      };
      let numTokens = 0;
      let killedAt = 0;
      await assert.rejects(async () => {
        for await (const response of pd.d.generate(request)) {
          for (const delta of response.choices) numTokens += delta.tokenIds.length;
          if (numTokens >= 4 && killedAt === 0) {
            killedAt = Date.now();
            pd.decode.child.kill('SIGKILL');
          }
        }
      });
      assert.ok(killedAt > 0, 'the stream ended before D could be killed');
      assert.ok(Date.now() - killedAt < 2000, `client error after ${Date.now() - killedAt} ms`);
      await assertIdleWithNoHeldPage(pd.p, 'P');
    } finally {
      await pd.stop();
    }
  });

  test('D killed mid-transfer: the client errors within 2 s and P holds no page for it', async () => {
    const pd = await startPd(fixture.dir, ['--prefill-chunk', '32']);
    try {
      const request = {
        ...greedyRequest('d-dies', longPrompt, 8),
        prefill: { address: pd.prefill.grpcAddress, requestId: 'd-dies' },
      };
      const result = generate(pd.d, request);
      result.catch(() => undefined);
      // Kill D once its receiver has landed some of the prompt's KV bytes.
      while (Number((await pd.d.info({})).kvBytesInFlight) === 0) await sleep(2);
      const killedAt = Date.now();
      pd.decode.child.kill('SIGKILL');
      await assert.rejects(result);
      assert.ok(Date.now() - killedAt < 2000, `client error after ${Date.now() - killedAt} ms`);
      await assertIdleWithNoHeldPage(pd.p, 'P');
    } finally {
      await pd.stop();
    }
  });
});
