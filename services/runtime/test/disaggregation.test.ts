// The hooks a disaggregated deployment needs, with two engines on shadow executors: a
// prefill-only request on P exposes its pages chunk by chunk and holds them; a request on D
// reserves pages, has P's KV copied into them (remote prefill), and joins decode.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ComputedPages,
  Engine,
  type FirstToken,
  type PrefillReservation,
  type SchedulerOptions,
} from '../src/engine.ts';
import { collect, randomTokens, request, seededRandom } from './helpers.ts';
import { ShadowExecutor, shadowGenerate, shadowVocabSize } from './shadow-executor.ts';

const options: SchedulerOptions = {
  maxBatchTokens: 64,
  maxRunningSequences: 16,
  maxPrefillChunkTokens: 7,
  enablePrefixCache: true,
  queuePolicy: 'fcfs',
  decodeReserveTokens: 4,
};

function node(numPages = 64) {
  const executor = new ShadowExecutor({ numPages, pageSize: 4 });
  return { executor, engine: new Engine(executor, options) };
}

function assertDrained(engine: Engine): void {
  engine.checkInvariants();
  const load = engine.load();
  assert.equal(load.numRunning + load.numWaiting, 0);
  assert.equal(load.numFreePages + load.numEvictablePages, load.numTotalPages);
}

/** Prefill on P (prefill-only), copy into D's reserved pages, return P's first token. */
async function prefillOnP(
  p: ReturnType<typeof node>,
  d: ReturnType<typeof node>,
  reservation: PrefillReservation,
  prompt: number[],
): Promise<{ first: FirstToken; reports: ComputedPages[] }> {
  const reports: ComputedPages[] = [];
  const id = `p-${reservation.requestId}`;
  const stream = p.engine.generate(request(id, prompt, 1, { logprobs: true }), undefined, {
    prefillOnly: { onComputed: (pages) => reports.push(pages) },
  });
  const [choice] = await collect(stream);
  const last = reports.at(-1)!;
  // Copy what D does not have yet (its cached prefix stays), page table to page table.
  p.executor.copyKvTo(
    d.executor,
    last.pageTable,
    reservation.pageTable,
    reservation.numCachedTokens,
    prompt.length,
  );
  p.engine.checkInvariants();
  assert.ok(p.engine.releasePrefill(id));
  assert.ok(!p.engine.releasePrefill(id));
  return { first: { tokenId: choice!.tokenIds[0]!, logprob: 0, topLogprobs: [] }, reports };
}

describe('disaggregation hooks', () => {
  test('prefill-only on P + remote prefill on D gives the local output; D computes only decode tokens', async () => {
    const p = node();
    const d = node();
    const prompt = randomTokens(seededRandom(1), 23, shadowVocabSize);
    let reports: ComputedPages[] = [];
    const stream = d.engine.generate(request('r1', prompt, 10), undefined, {
      remotePrefill: {
        fill: async (reservation) => {
          assert.equal(reservation.numPromptTokens, 23);
          assert.equal(reservation.pageTable.length, 6);
          const result = await prefillOnP(p, d, reservation, prompt);
          reports = result.reports;
          return result.first;
        },
      },
    });
    const [choice] = await collect(stream);
    assert.deepEqual(choice!.tokenIds, shadowGenerate(prompt, 10));
    // P reported contiguous chunks of at most 7 tokens covering the prompt.
    let end = 0;
    for (const r of reports) {
      assert.equal(r.startPos, end);
      assert.ok(r.endPos - r.startPos <= 7);
      end = r.endPos;
    }
    assert.equal(end, 23);
    assert.equal(d.engine.stats().numForwardTokens, 9); // decode steps only
    // D cached the remote KV: a local request with the same prompt computes only the last token.
    const local = await collect(d.engine.generate(request('r2', prompt, 3)));
    assert.deepEqual(local[0]!.tokenIds, shadowGenerate(prompt, 3));
    assert.equal(local[0]!.numCachedTokens, 20);
    assertDrained(p.engine);
    assertDrained(d.engine);
  });

  test('a failed remote prefill falls back to a local prefill from the cached prefix', async () => {
    const d = node();
    const prompt = randomTokens(seededRandom(2), 30, shadowVocabSize);
    await collect(d.engine.generate(request('warm', prompt.slice(0, 12), 1)));
    const before = d.engine.stats().numForwardTokens;
    const stream = d.engine.generate(request('r', prompt, 5), undefined, {
      remotePrefill: {
        fill: async (reservation) => {
          assert.equal(reservation.numCachedTokens, 12);
          await sleep(5);
          throw new Error('prefill worker died');
        },
      },
    });
    const [choice] = await collect(stream);
    assert.deepEqual(choice!.tokenIds, shadowGenerate(prompt, 5));
    assert.equal(d.engine.stats().numForwardTokens - before, 30 - 12 + 4);
    assertDrained(d.engine);
  });

  test('an abort while the remote writes keeps the pages until the remote settles', async () => {
    const d = node();
    const prompt = randomTokens(seededRandom(3), 20, shadowVocabSize);
    const controller = new AbortController();
    let release: () => void = () => {};
    let sawAbort = false;
    const stream = d.engine.generate(request('r', prompt, 5), controller.signal, {
      remotePrefill: {
        fill: (_reservation, signal) =>
          new Promise<FirstToken>((_resolve, reject) => {
            signal.addEventListener('abort', () => {
              sawAbort = true;
            });
            release = () => reject(new Error('cancelled'));
          }),
      },
    });
    const done = collect(stream);
    await sleep(5);
    controller.abort();
    const [choice] = await done;
    assert.equal(choice!.finishReason, 'abort');
    assert.ok(sawAbort, 'the remote was told');
    assert.equal(d.engine.load().numFreePages, 64 - 5, 'pages held while the remote may write');
    d.engine.checkInvariants();
    release();
    await sleep(1);
    assertDrained(d.engine);
    assert.equal(d.engine.load().numFreePages, 64);
  });

  test('pages held by a prefill-only request block admission until released', async () => {
    const p = node(8);
    const prompt = randomTokens(seededRandom(5), 20, shadowVocabSize);
    await collect(
      p.engine.generate(request('held', prompt, 1), undefined, { prefillOnly: { onComputed: () => {} } }),
    );
    assert.equal(p.engine.load().numFreePages, 3);
    assert.throws(() => p.engine.generate(request('held', prompt, 1)), { name: 'DuplicateRequestError' });
    const other = randomTokens(seededRandom(6), 20, shadowVocabSize);
    const waiting = collect(p.engine.generate(request('next', other, 4)));
    await sleep(5);
    assert.equal(p.engine.load().numWaiting, 1, 'waits for pages');
    assert.ok(p.engine.abort('held')); // abort also frees held prefill pages (a lease that expired)
    assert.ok(!p.engine.releasePrefill('held'));
    const [choice] = await waiting;
    assert.deepEqual(choice!.tokenIds, shadowGenerate(other, 4));
    assertDrained(p.engine);
  });

  test('many remote-prefilled requests under page pressure match local outputs', async () => {
    const p = node(256);
    const d = node(20);
    const random = seededRandom(4);
    const prompts = Array.from({ length: 12 }, (_, i) => randomTokens(random, 3 + i * 2, shadowVocabSize));
    const results = await Promise.all(
      prompts.map((prompt, i) =>
        collect(
          d.engine.generate(request(`r${i}`, prompt, 12), undefined, {
            remotePrefill: {
              fill: async (reservation) => {
                await sleep(Math.floor(random() * 5));
                return (await prefillOnP(p, d, reservation, prompt)).first;
              },
            },
          }),
        ),
      ),
    );
    results.forEach((choices, i) => {
      assert.deepEqual(choices[0]!.tokenIds, shadowGenerate(prompts[i]!, 12), `request ${i}`);
    });
    assert.ok(d.engine.stats().numPreemptions > 0, 'decode ran out of pages');
    assertDrained(p.engine);
    assertDrained(d.engine);
  });
});
