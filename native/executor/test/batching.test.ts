// Batched equals sequential: all cases of a fixture in one batch, prefill split into chunks at
// random points, decode steps interleaved with other sequences' prefill, scattered pages.
// Page sizes 1, 16 and 64 give identical results.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Executor, type SequenceInput } from '../src/index.ts';
import {
  assertSameLogprobs,
  casesOptions,
  generateSequential,
  loadFixtures,
  pageRange,
  seededRandom,
  seqInput,
  shuffledPages,
  testDeviceOptions,
} from './helpers.ts';

interface Running {
  caseIndex: number;
  prompt: number[];
  numTokens: number;
  pageTable: Int32Array;
  numComputed: number; // positions already in the KV pages
  generated: number[];
  logprobs: number[];
  startStep: number;
}

for (const fixture of loadFixtures()) {
  describe(`batching: ${fixture.name}`, () => {
    test('all cases in one batch, chunked prefill, interleaved decode', async () => {
      const pageSize = 16;
      const maxTokens = 24;
      const random = seededRandom(fixture.name.length * 7919);
      const pagesPerSeq = fixture.cases.map((c) => Math.ceil((c.prompt_ids.length + maxTokens) / pageSize));
      const numPages = pagesPerSeq.reduce((a, b) => a + b, 0) + 3;
      await using ex = await Executor.open({
        ...testDeviceOptions,
        modelDir: fixture.dir,
        pageSize,
        numPages,
        ...casesOptions,
      });

      // Sequential reference through the same executor.
      const reference: Awaited<ReturnType<typeof generateSequential>>[] = [];
      for (const c of fixture.cases) {
        reference.push(await generateSequential(ex, c.prompt_ids, maxTokens, pageRange(0, numPages)));
      }

      const free = shuffledPages(numPages, random);
      const running: Running[] = fixture.cases.map((c, caseIndex) => ({
        caseIndex,
        prompt: c.prompt_ids,
        numTokens: maxTokens,
        pageTable: Int32Array.from(free.splice(0, pagesPerSeq[caseIndex] ?? 0)),
        numComputed: 0,
        generated: [],
        logprobs: [],
        startStep: Math.floor(random() * 6), // staggered arrivals
      }));
      for (let step = 0; running.some((r) => r.generated.length < r.numTokens); step++) {
        const batch: SequenceInput[] = [];
        const members: Running[] = [];
        for (const r of running) {
          if (step < r.startStep || r.generated.length >= r.numTokens) continue;
          if (random() < 0.15) continue; // sometimes sit a step out
          const all = [...r.prompt, ...r.generated];
          const remaining = all.length - r.numComputed;
          const chunk = Math.min(remaining, 1 + Math.floor(random() * 40));
          const finishes = r.numComputed + chunk === all.length;
          batch.push(
            seqInput({
              tokenIds: Int32Array.from(all.slice(r.numComputed, r.numComputed + chunk)),
              startPos: r.numComputed,
              pageTable: r.pageTable,
              sampleIndices: finishes ? Int32Array.of(chunk - 1) : new Int32Array(0),
            }),
          );
          members.push(r);
          r.numComputed += chunk;
        }
        if (batch.length === 0) continue;
        const outs = await ex.forward(batch);
        outs.forEach((out, i) => {
          const r = members[i] as Running;
          const sample = out.samples[0];
          if (sample !== undefined) {
            r.generated.push(sample.tokenId);
            r.logprobs.push(sample.logprob);
          }
        });
      }
      for (const r of running) {
        const ref = reference[r.caseIndex];
        assert.ok(ref);
        assert.deepEqual(r.generated, ref.tokenIds, `case ${r.caseIndex}`);
        assert.deepEqual(r.generated, fixture.cases[r.caseIndex]?.greedy_ids);
        assertSameLogprobs(r.logprobs, ref.logprobs, `case ${r.caseIndex} logprobs`);
      }
    });

    test('page sizes 1, 16 and 64 give identical results', async () => {
      const results: Awaited<ReturnType<typeof generateSequential>>[][] = [];
      for (const pageSize of [1, 16, 64]) {
        const maxLen = Math.max(...fixture.cases.map((c) => c.prompt_ids.length)) + 24;
        const numPages = Math.ceil(maxLen / pageSize);
        await using ex = await Executor.open({
          ...testDeviceOptions,
          modelDir: fixture.dir,
          pageSize,
          numPages,
          ...casesOptions,
        });
        // Reverse order: page ids are not positions.
        const pageTable = Int32Array.from({ length: numPages }, (_, i) => numPages - 1 - i);
        const perCase: Awaited<ReturnType<typeof generateSequential>>[] = [];
        for (const c of fixture.cases)
          perCase.push(await generateSequential(ex, c.prompt_ids, 24, pageTable));
        results.push(perCase);
      }
      const [first, ...rest] = results;
      assert.ok(first);
      for (const other of rest) {
        other.forEach((r, i) => {
          assert.deepEqual(r.tokenIds, first[i]?.tokenIds);
          assertSameLogprobs(r.logprobs, first[i]?.logprobs ?? [], `case ${i} logprobs`);
          assert.deepEqual(r.firstLogits, first[i]?.firstLogits);
        });
      }
      for (const [i, r] of first.entries()) assert.deepEqual(r.tokenIds, fixture.cases[i]?.greedy_ids);
    });
  });
}
