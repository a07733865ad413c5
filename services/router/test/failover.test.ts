// Mid-stream failover's bookkeeping (the end-to-end behaviour is test/e2e/failover.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create, FinishReason, GenerateResponseSchema } from '@tandem/proto';
import { ChoiceProgress, mergeStreams, renameChoice } from '../src/cluster/failover.ts';

const response = (choices: { index: number; tokenIds: number[]; finishReason?: FinishReason }[]) =>
  create(GenerateResponseSchema, { choices });

test("progress keeps each choice's tokens; an aborted choice is unfinished and loses its finish", () => {
  const progress = new ChoiceProgress(3);
  progress.observe(
    response([
      { index: 0, tokenIds: [1, 2] },
      { index: 1, tokenIds: [5] },
    ]),
  );
  const aborted = progress.observe(
    response([
      { index: 0, tokenIds: [3], finishReason: FinishReason.LENGTH },
      { index: 1, tokenIds: [], finishReason: FinishReason.ABORT },
    ]),
  );
  assert.equal(aborted.choices[1]!.finishReason, FinishReason.UNSPECIFIED);
  assert.equal(progress.allFinished, false);
  assert.deepEqual(progress.unfinished(), [
    { index: 1, tokenIds: [5] },
    { index: 2, tokenIds: [] },
  ]);
  assert.equal(renameChoice(response([{ index: 0, tokenIds: [9] }]), 2).choices[0]!.index, 2);
});

test('merged streams interleave; a failure ends the whole and stops the others', async () => {
  let stopped = false;
  async function* slow() {
    try {
      yield 'a1';
      await new Promise((resolve) => setTimeout(resolve, 50));
      yield 'a2';
      await new Promise((resolve) => setTimeout(resolve, 1000));
      yield 'a3';
    } finally {
      stopped = true;
    }
  }
  async function* failing() {
    yield 'b1';
    await new Promise((resolve) => setTimeout(resolve, 10));
    throw new Error('b failed');
  }
  const seen: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const item of mergeStreams([slow(), failing()])) seen.push(item);
    })(),
    /b failed/,
  );
  assert.deepEqual(seen.sort(), ['a1', 'b1']);
  assert.equal(stopped, true);
  const all: string[] = [];
  async function* two(prefix: string) {
    yield `${prefix}1`;
    yield `${prefix}2`;
  }
  for await (const item of mergeStreams([two('x'), two('y')])) all.push(item);
  assert.deepEqual(all.sort(), ['x1', 'x2', 'y1', 'y2']);
});
