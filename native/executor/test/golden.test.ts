// Every case of every fixture (and the demo model) against transformers' float32 golden outputs:
// greedy ids exact, teacher-forced log-probs and last prompt logits within 1e-4.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Executor } from '../src/index.ts';
import {
  casesOptions,
  type Fixture,
  generateSequential,
  loadDemo,
  loadFixtures,
  maxAbsDiff,
  pageRange,
  seqInput,
  testDeviceOptions,
} from './helpers.ts';

const tolerance = 1e-4;

for (const fixture of [...loadFixtures(), loadDemo()]) {
  describe(`golden: ${fixture.name}`, () => {
    let ex: Executor;
    before(async () => {
      ex = await Executor.open({
        ...testDeviceOptions,
        modelDir: fixture.dir,
        pageSize: 16,
        numPages: 32,
        ...casesOptions,
      });
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

// text_cases and chat_cases with the executor's default options (as every worker runs it).
for (const fixture of loadFixtures()) {
  test(`golden text and chat cases: ${fixture.name}`, async () => {
    await using ex = await Executor.open({
      ...testDeviceOptions,
      modelDir: fixture.dir,
      pageSize: 16,
      numPages: 32,
    });
    for (const c of fixture.textCases) {
      const { tokenIds } = await generateSequential(ex, c.prompt_ids, c.greedy_ids.length, pageRange(0, 32));
      assert.deepEqual(tokenIds, c.greedy_ids, `prompt ${c.prompt_ids.join(',')}`);
    }
  });
}

test('ropeFrequencyRounding changes a bf16 checkpoint only, and is validated', async () => {
  const [bf16] = loadFixtures().filter((f) => f.name === 'tiny-llama-bf16');
  assert.ok(bf16);
  const c = bf16.cases.at(-1)!;
  const ids = [...c.prompt_ids, ...c.greedy_ids];
  const logprobs = async (options: object): Promise<Float32Array> => {
    await using ex = await Executor.open({
      ...testDeviceOptions,
      modelDir: bf16.dir,
      pageSize: 16,
      numPages: 32,
      ...options,
    });
    const [out] = await ex.forward([
      seqInput({
        tokenIds: Int32Array.from(ids.slice(0, -1)),
        pageTable: pageRange(0, 32),
        sampleIndices: new Int32Array(0),
        targetIds: Int32Array.from(ids.slice(1)),
      }),
    ]);
    return out!.targetLogprobs!;
  };
  const rounded = await logprobs(casesOptions);
  const exact = await logprobs({});
  assert.ok(maxAbsDiff(rounded, c.sequence_logprobs!) < tolerance);
  assert.ok(maxAbsDiff(exact, c.sequence_logprobs!) > 1e-3, 'rounding should matter at 257 tokens');
  await assert.rejects(
    Executor.open({
      ...testDeviceOptions,
      modelDir: bf16.dir,
      numPages: 4,
      ropeFrequencyRounding: 'bf16' as 'none',
    }),
    /ropeFrequencyRounding/,
  );
});
