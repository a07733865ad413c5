// Every case of every fixture (and the demo model) against transformers' float32 golden outputs:
// greedy ids exact, teacher-forced log-probs and last prompt logits within 1e-4.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Executor } from '../src/index.ts';
import {
  type Fixture,
  generateSequential,
  loadDemo,
  loadFixtures,
  maxAbsDiff,
  pageRange,
  seqInput,
} from './helpers.ts';

const tolerance = 1e-4;

for (const fixture of [...loadFixtures(), loadDemo()]) {
  describe(`golden: ${fixture.name}`, () => {
    let ex: Executor;
    before(async () => {
      ex = await Executor.open({ modelDir: fixture.dir, pageSize: 16, numPages: 32 });
    });
    after(async () => {
      const stats = ex.stats;
      assert.ok(stats.forwardCalls >= fixture.cases.length * 24, `forwardCalls ${stats.forwardCalls}`);
      assert.ok(stats.forwardTokens > stats.forwardCalls);
      await ex.close();
    });

    test('reports the model', () => {
      assert.equal(ex.info.computeDtype, 'float32');
      assert.equal(ex.kvLayout.numPages, 32);
      assert.equal(ex.kvLayout.pageSize, 16);
      assert.equal(ex.kvLayout.pageBytes, 16 * ex.info.numKvHeads * ex.info.headDim * 4);
      assert.equal(ex.kvLayout.totalBytes, ex.kvLayout.pageBytes * 2 * ex.info.numLayers * 32);
      assert.ok(ex.kvLayout.baseAddress > 0n);
    });

    for (const c of fixture.cases as Required<Fixture['cases'][number]>[]) {
      test(`prompt of ${c.prompt_ids.length} tokens`, async () => {
        const pageTable = pageRange(0, 32);
        const { tokenIds, firstLogits } = await generateSequential(
          ex,
          c.prompt_ids,
          c.greedy_ids.length,
          pageTable,
        );
        assert.deepEqual(tokenIds, c.greedy_ids);
        if (c.last_prompt_logits !== undefined) {
          assert.ok(firstLogits !== null);
          const diff = maxAbsDiff(firstLogits, c.last_prompt_logits);
          assert.ok(diff < tolerance, `last_prompt_logits differ by ${diff}`);
        }
        if (c.sequence_logprobs !== undefined) {
          const ids = [...c.prompt_ids, ...c.greedy_ids];
          const [out] = await ex.forward([
            seqInput({
              tokenIds: Int32Array.from(ids.slice(0, -1)),
              pageTable,
              sampleIndices: new Int32Array(0),
              targetIds: Int32Array.from(ids.slice(1)),
            }),
          ]);
          assert.ok(out?.targetLogprobs);
          const diff = maxAbsDiff(out.targetLogprobs, c.sequence_logprobs);
          assert.ok(diff < tolerance, `sequence_logprobs differ by ${diff}`);
        }
      });
    }
  });
}
