// Randomized scheduler configurations and workloads against the shadow executor. Page
// bookkeeping is checked before every forward pass; every finished choice must equal the
// reference generation cut at the same stop condition; aborted ones must be its prefix.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SequenceInput, SequenceOutput } from '@tandem/executor';
import { Engine, type GenerateHooks, type GenerateRequest, type SchedulerOptions } from '../src/engine.ts';
import { collect, greedy, randomTokens, request, seededRandom } from './helpers.ts';
import { ShadowExecutor, shadowEosTokenId, shadowNextToken, shadowVocabSize } from './shadow-executor.ts';

class CheckedExecutor extends ShadowExecutor {
  engine: Engine | null = null;
  override forward(batch: SequenceInput[]): Promise<SequenceOutput[]> {
    this.engine?.checkInvariants();
    return super.forward(batch);
  }
}

function expected(r: GenerateRequest, seed: number | null): { tokenIds: number[]; finishReason: string } {
  const tokens = [...r.promptTokenIds];
  const out: number[] = [];
  for (;;) {
    const token = shadowNextToken(tokens, tokens.length, seed);
    tokens.push(token);
    out.push(token);
    if (out.length >= r.minTokens) {
      if (!r.ignoreEos && token === shadowEosTokenId) return { tokenIds: out, finishReason: 'stop' };
      if (r.stopTokenIds.includes(token)) return { tokenIds: out, finishReason: 'stop' };
    }
    if (out.length >= r.maxTokens) return { tokenIds: out, finishReason: 'length' };
  }
}

for (let round = 0; round < 12; round++) {
  const withHooks = round % 2 === 1;
  test(`fuzz round ${round}${withHooks ? ' (remote prefill, prefill-only)' : ''}`, async () => {
    const fills: Promise<unknown>[] = [];
    const random = seededRandom(1000 + round);
    const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
    const pageSize = [2, 4, 8][int(0, 2)]!;
    const numPages = int(Math.ceil(64 / pageSize), Math.ceil(400 / pageSize));
    const options: SchedulerOptions = {
      maxBatchTokens: int(4, 64),
      maxRunningSequences: int(1, 16),
      maxPrefillChunkTokens: int(1, 16),
      enablePrefixCache: random() < 0.7,
      queuePolicy: random() < 0.5 ? 'fcfs' : 'longest-prefix',
      decodeReserveTokens: int(0, 8),
    };
    const executor = new CheckedExecutor({ numPages, pageSize });
    const engine = new Engine(executor, options);
    executor.engine = engine;
    // A KV-event subscriber's view, rebuilt from events only.
    const view = new Map<string, bigint | null>();
    let lastSeq = 0;
    engine.onKvEvent((event) => {
      assert.equal(event.seq, lastSeq + 1);
      lastSeq = event.seq;
      if (event.type === 'stored')
        for (const b of event.blocks) view.set(`${event.namespace}/${b.hash}`, b.parentHash);
      else if (event.type === 'removed')
        for (const h of event.hashes) assert.ok(view.delete(`${event.namespace}/${h}`));
      else view.clear();
    });
    const shared = randomTokens(random, 30, shadowVocabSize);
    const runs: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      const prompt = [
        ...shared.slice(0, random() < 0.6 ? int(0, 30) : 0),
        ...randomTokens(random, int(1, 25), shadowVocabSize),
      ];
      const seed = random() < 0.3 ? int(0, 1000) : null;
      const r = request(`f${i}`, prompt, int(1, 20), {
        n: random() < 0.2 ? int(2, 3) : 1,
        ignoreEos: random() < 0.5,
        minTokens: random() < 0.3 ? int(0, 5) : 0,
        stopTokenIds: random() < 0.3 ? [int(3, shadowVocabSize - 1)] : [],
        sampling: seed === null ? greedy : { ...greedy, temperature: 1, seed },
      });
      const controller = new AbortController();
      if (random() < 0.25) setTimeout(() => controller.abort(), int(0, 15));
      const hooks: GenerateHooks = {};
      const mode = withHooks ? random() : 1;
      if (mode < 0.3) {
        const delayMs = int(0, 4);
        const fails = random() < 0.25;
        hooks.remotePrefill = {
          fill: (reservation) => {
            const filled = (async () => {
              await sleep(delayMs);
              if (fails) throw new Error('remote prefill failed');
              const start = reservation.numCachedTokens;
              executor.writeKv(reservation.pageTable, start, prompt.slice(start));
              return { tokenId: shadowNextToken(prompt, prompt.length, seed), logprob: 0, topLogprobs: [] };
            })();
            // An aborted request's pages stay until its fill settles: the final check waits for it.
            fills.push(filled.catch(() => null));
            return filled;
          },
        };
      } else if (mode < 0.4 && r.n === 1) {
        hooks.prefillOnly = { onComputed: () => {} };
      }
      const releaseDelayMs = int(0, 10);
      runs.push(
        collect(engine.generate(r, controller.signal, hooks)).then(async (choices) => {
          if (hooks.prefillOnly !== undefined) {
            await sleep(releaseDelayMs);
            engine.releasePrefill(r.requestId);
          }
          assert.equal(choices.length, r.n);
          for (const [c, choice] of choices.entries()) {
            const want = expected(r, seed === null ? null : seed + c);
            const capacity = numPages * pageSize;
            const truncated =
              choice.finishReason === 'length' && choice.tokenIds.length < want.tokenIds.length;
            if (choice.finishReason === 'abort' || truncated) {
              assert.deepEqual(choice.tokenIds, want.tokenIds.slice(0, choice.tokenIds.length));
              // A choice ends early with 'length' only when it alone fills the whole pool.
              if (truncated)
                assert.ok(prompt.length + choice.tokenIds.length >= capacity, `request ${i}: early length`);
            } else {
              assert.deepEqual(choice.tokenIds, want.tokenIds, `request ${i} choice ${c}`);
              assert.equal(choice.finishReason, want.finishReason);
            }
          }
        }),
      );
      if (random() < 0.3) await sleep(int(0, 2));
    }
    await Promise.all(runs);
    await Promise.all(fills);
    await sleep(1);
    engine.checkInvariants();
    const dump = engine.dumpBlocks();
    assert.equal(dump.seq, lastSeq);
    assert.equal(view.size, dump.blocks.length);
    for (const b of dump.blocks) assert.equal(view.get(`${b.namespace}/${b.hash}`), b.parentHash);
    const load = engine.load();
    assert.equal(load.numRunning + load.numWaiting, 0);
    assert.equal(load.numFreePages + load.numEvictablePages, load.numTotalPages);
    await engine.close();
  });
}
