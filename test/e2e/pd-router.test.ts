// The router chooses the prefill worker (P) for a decode worker (D), through the openai client,
// with real worker processes: 2 prefill + 1 decode worker of tiny-llama, NATS and Redis.
// - cache-aware: a repeated long prefix goes to the P that holds it (routing record, P's cached
//   tokens as D logged them, P's block dump), an unrelated one to the other P;
// - --disagg-threshold 0 sends every prompt through a P; a large threshold has D prefill locally
//   (P runs nothing, though D itself would pick a P: it is started with --disagg-threshold 0);
// - D uses the P the router named; a named P that fails is replaced from D's own directory.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createGrpcClient, type GrpcClient } from '@tandem/common';
import { PrefillMode, Worker } from '@tandem/proto';
import type { RouterApp } from '@tandem/router';
import OpenAI from 'openai';
import {
  fixturesDir,
  startBackplane,
  startRouter,
  startWorker,
  type WorkerProcess,
  waitFor,
  waitForWorkers,
} from './router-cluster.ts';

const modelDir = `${fixturesDir}/tiny-llama`;
const pageSize = 16;

interface RemotePrefillLine {
  requestId: string;
  prefill: string;
  numPromptTokens: number;
  numCachedHere: number;
  numCachedThere: number;
  bytes: number;
}

interface PrefillRecord {
  type: 'remote' | 'local' | 'undecided';
  workerId?: string;
  address?: string;
  reason?: string;
  threshold?: number;
  numUncachedOnDecode?: number;
  candidates?: { workerId: string; address: string; cost: number; terms: Record<string, number> }[];
}

function promptOf(length: number, seed: number): number[] {
  return Array.from({ length }, (_, i) => 10 + ((i * 7919 + seed * 104729) % 480));
}

function remotePrefills(decode: WorkerProcess): RemotePrefillLine[] {
  return decode
    .output()
    .split('\n')
    .filter((line) => line.includes('"remote prefill done"'))
    .map((line) => JSON.parse(line) as RemotePrefillLine);
}

async function numCachedBlocks(client: GrpcClient<typeof Worker>): Promise<number> {
  let numBlocks = 0;
  for await (const chunk of client.dumpBlocks({})) numBlocks += chunk.blocks.length;
  return numBlocks;
}

async function routingOf(router: RouterApp, requestId: string): Promise<PrefillRecord> {
  const response = await fetch(`${router.url}/debug/routing/${requestId}`);
  assert.equal(response.status, 200);
  const body = (await response.json()) as { decisions: { prefill: PrefillRecord | null }[] };
  assert.equal(body.decisions.length, 1, 'one decision, no retry');
  const prefill = body.decisions[0]!.prefill;
  assert.notEqual(prefill, null, 'a decode worker decision records its prefill choice');
  return prefill!;
}

describe('the router picks the prefill worker (2 P + 1 D, tiny-llama)', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  let decode: WorkerProcess;
  let prefills: WorkerProcess[] = [];
  const clients = new Map<string, GrpcClient<typeof Worker>>();
  let router: RouterApp; // --disagg-threshold 0
  let localRouter: RouterApp; // --disagg-threshold 100000
  let requestSeq = 0;

  /** Completes `prompt` through `via`; returns D's remote prefill line for it (null: none). */
  async function complete(via: RouterApp, prompt: number[]) {
    const requestId = `pdr-${process.pid}-${++requestSeq}`;
    const before = remotePrefills(decode).length;
    const client = new OpenAI({ baseURL: `${via.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const completion = await client.completions.create(
      { model: 'tiny-llama', prompt, max_tokens: 4, temperature: 0 },
      { headers: { 'x-request-id': requestId } },
    );
    assert.equal(completion.usage!.prompt_tokens, prompt.length);
    assert.equal(completion.usage!.completion_tokens, 4);
    const record = await routingOf(via, requestId);
    // The log line crosses a pipe after the stream ended.
    const mine = () => remotePrefills(decode).filter((line) => line.requestId.startsWith(`${requestId}-`));
    if (record.type === 'remote') await waitFor('D to log the remote prefill', () => mine().length > 0, 3000);
    else await new Promise((resolve) => setTimeout(resolve, 100));
    const lines = mine();
    assert.ok(lines.length <= 1);
    assert.equal(remotePrefills(decode).length, before + lines.length, 'no other remote prefill ran');
    return { record, line: lines[0] ?? null };
  }

  before(async () => {
    backplane = await startBackplane();
    const start = (workerId: string, args: string[]) =>
      startWorker({
        modelDir,
        workerId,
        natsUrl: backplane.nats.url,
        redisUrl: backplane.redis.url,
        extraArgs: ['--num-pages', '256', ...args],
      });
    // D first: it sees both prefill workers join (its own directory, the fallback).
    decode = await start('pdr-d', ['--role', 'decode', '--disagg-threshold', '0', '--log-level', 'info']);
    prefills = await Promise.all([
      start('pdr-p0', ['--role', 'prefill']),
      start('pdr-p1', ['--role', 'prefill']),
    ]);
    for (const worker of [decode, ...prefills])
      clients.set(worker.workerId, createGrpcClient(Worker, worker.grpcAddress));
    router = await startRouter(modelDir, backplane, { policy: 'cache_aware' });
    localRouter = await startRouter(modelDir, backplane, { policy: 'cache_aware', disaggThreshold: 100_000 });
    for (const r of [router, localRouter]) {
      await waitForWorkers(r, 1);
      await waitFor('the prefill workers', () => r.registry.prefillWorkers().length === 2, 15_000);
    }
  });

  after(async () => {
    for (const client of clients.values()) client.close();
    await router?.close();
    await localRouter?.close();
    await Promise.all([decode, ...prefills].filter((w) => w !== undefined).map((w) => w.stop()));
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  test('a repeated long prefix goes to the prefill worker that holds it; D uses the named one', async () => {
    const prefixA = promptOf(192, 1);
    const prefixB = promptOf(192, 2);
    const addressOf = new Map(prefills.map((p) => [p.grpcAddress, p.workerId]));

    const a1 = await complete(router, [...prefixA, ...promptOf(20, 11)]);
    assert.equal(a1.record.type, 'remote');
    assert.equal(a1.record.threshold, 0);
    assert.equal(a1.record.candidates!.length, 2, 'both prefill workers were candidates');
    for (const candidate of a1.record.candidates!) {
      for (const term of ['cachedTokens', 'uncachedTokens', 'queuedPrefillTokens', 'prefillMs', 'transferMs'])
        assert.equal(typeof candidate.terms[term], 'number', `${term} recorded`);
    }
    assert.equal(a1.line!.prefill, a1.record.address, "D used the router's prefill worker");
    assert.equal(a1.line!.numCachedThere, 0);
    const holderA = addressOf.get(a1.record.address!)!;
    assert.equal(a1.record.workerId, holderA);

    // An unrelated prefix: both are equally cold, so the one not picked lately takes it.
    const b1 = await complete(router, [...prefixB, ...promptOf(20, 12)]);
    assert.equal(b1.record.type, 'remote');
    assert.equal(b1.line!.prefill, b1.record.address);
    const holderB = addressOf.get(b1.record.address!)!;
    assert.notEqual(holderB, holderA, 'the second prefix went to the other prefill worker');

    // The router's index learns P's blocks from P's own KV events.
    await waitFor('P events in the index', () =>
      [holderA, holderB].every((id) => router.index.numWorkerBlocks(id) >= 12),
    );
    const blocksBefore = new Map(
      await Promise.all(
        prefills.map(async (p) => [p.workerId, await numCachedBlocks(clients.get(p.workerId)!)] as const),
      ),
    );

    for (const [prefix, holder, seed] of [
      [prefixA, holderA, 21],
      [prefixB, holderB, 22],
    ] as const) {
      const again = await complete(router, [...prefix, ...promptOf(40, seed)]);
      assert.equal(again.record.type, 'remote');
      assert.equal(again.record.workerId, holder, 'the prefix went back to the worker holding it');
      const chosen = again.record.candidates!.find((c) => c.workerId === holder)!;
      const other = again.record.candidates!.find((c) => c.workerId !== holder)!;
      assert.equal(chosen.terms.cachedTokens, 192);
      assert.equal(other.terms.cachedTokens, 0);
      assert.ok(chosen.cost < other.cost);
      assert.equal(again.line!.prefill, again.record.address, "D used the router's prefill worker");
      assert.equal(again.line!.numCachedThere, 192, "P's prefix cache served the prefix");
    }
    // P computed only the new suffixes: 232 tokens, 14 full pages, 2 of them new on each holder.
    for (const p of prefills) {
      const blocks = await numCachedBlocks(clients.get(p.workerId)!);
      assert.equal(blocks - blocksBefore.get(p.workerId)!, Math.floor(232 / pageSize) - 12, `${p.workerId}`);
    }
  });

  test('--disagg-threshold 0 sends every prompt through a prefill worker, short ones included', async () => {
    for (const [length, seed] of [
      [5, 31],
      [40, 32],
      [130, 33],
    ] as const) {
      const prompt = promptOf(length, seed);
      const blocksBefore = await Promise.all(prefills.map((p) => numCachedBlocks(clients.get(p.workerId)!)));
      const { record, line } = await complete(router, prompt);
      assert.equal(record.type, 'remote', `${length} tokens`);
      assert.notEqual(line, null, `P ran the ${length}-token prompt's forward pass`);
      assert.equal(line!.prefill, record.address);
      assert.equal(line!.numPromptTokens, length);
      const blocksAfter = await Promise.all(prefills.map((p) => numCachedBlocks(clients.get(p.workerId)!)));
      const chosen = prefills.findIndex((p) => p.grpcAddress === record.address);
      assert.equal(
        blocksAfter[chosen]! - blocksBefore[chosen]!,
        Math.floor(length / pageSize),
        'P cached its pages',
      );
      assert.equal(blocksAfter[1 - chosen], blocksBefore[1 - chosen], 'the other P ran nothing');
    }
  });

  test('a large --disagg-threshold: D prefills locally and no prefill worker runs anything', async () => {
    const blocksBefore = await Promise.all(prefills.map((p) => numCachedBlocks(clients.get(p.workerId)!)));
    const decodeBlocksBefore = await numCachedBlocks(clients.get(decode.workerId)!);
    const prompt = promptOf(150, 41);
    const { record, line } = await complete(localRouter, prompt);
    assert.equal(record.type, 'local');
    assert.equal(record.threshold, 100_000);
    assert.equal(record.numUncachedOnDecode, 150);
    assert.match(
      record.reason!,
      /150 prompt tokens uncached on the decode worker < --disagg-threshold 100000/,
    );
    assert.equal(record.candidates!.length, 2, 'the candidates are recorded with their terms');
    assert.equal(line, null, 'D asked no prefill worker');
    const blocksAfter = await Promise.all(prefills.map((p) => numCachedBlocks(clients.get(p.workerId)!)));
    assert.deepEqual(blocksAfter, blocksBefore, 'no prefill worker computed anything');
    assert.equal(
      (await numCachedBlocks(clients.get(decode.workerId)!)) - decodeBlocksBefore,
      Math.floor(150 / pageSize),
      'D computed the prompt itself',
    );
  });

  test('direct gRPC: a named prefill worker that fails is replaced by one D discovered; LOCAL asks none', async () => {
    const d = clients.get(decode.workerId)!;
    const run = async (requestId: string, prefill: { mode: PrefillMode; address?: string }) => {
      const tokenIds: number[] = [];
      for await (const response of d.generate({
        requestId,
        promptTokenIds: promptOf(60, requestId.length),
        sampling: { temperature: 0 },
        maxTokens: 3,
        ignoreEos: true,
        n: 1,
        prefill,
      }))
        for (const choice of response.choices) tokenIds.push(...choice.tokenIds);
      assert.equal(tokenIds.length, 3);
    };
    const before = remotePrefills(decode).length;
    await run('direct-dead-p', { mode: PrefillMode.REMOTE, address: '127.0.0.1:1' });
    await waitFor('the fallback remote prefill', () => remotePrefills(decode).length > before, 3000);
    const line = remotePrefills(decode).at(-1)!;
    assert.equal(line.requestId, 'direct-dead-p');
    assert.ok(
      prefills.some((p) => p.grpcAddress === line.prefill),
      'a discovered prefill worker did it',
    );
    assert.match(
      decode.output(),
      /"remote prefill failed".*"requestId":"direct-dead-p".*"prefill":"127\.0\.0\.1:1"/,
    );

    const beforeLocal = remotePrefills(decode).length;
    await run('direct-local-seed-x', { mode: PrefillMode.LOCAL });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(remotePrefills(decode).length, beforeLocal, 'LOCAL: D asked no prefill worker');

    await assert.rejects(run('direct-remote-no-address', { mode: PrefillMode.REMOTE }), /prefill\.address/);
  });
});
