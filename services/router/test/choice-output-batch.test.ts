// A worker's merged steps (several tokens in one delta) decode in one call: the text and the
// token count are those of one-token pushes and of decoding the whole output.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixtureDir } from '@tandem/common/testing';
import { loadServedModel } from '../src/model.ts';
import { ChoiceOutput } from '../src/openai/choice-output.ts';

test('batched deltas release the same text and count as one-token deltas', async () => {
  const model = await loadServedModel(fixtureDir('tiny-llama'), null, 0);
  try {
    const text = 'def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)  # done';
    const ids = model.tokenizer.encode(text, { addSpecialTokens: false });
    const single = new ChoiceOutput(model.createDecoder(true), [], false);
    let singleText = '';
    for (const id of ids) singleText += single.push([id], null, null).text;
    singleText += single.finish().text;
    for (const size of [2, 3, 5, 64]) {
      const batched = new ChoiceOutput(model.createDecoder(true), [], false);
      let batchedText = '';
      let numTokens = 0;
      for (let at = 0; at < ids.length; at += size) {
        const release = batched.push(ids.slice(at, at + size), null, null);
        batchedText += release.text;
        numTokens += release.tokens.length;
      }
      const tail = batched.finish();
      batchedText += tail.text;
      numTokens += tail.tokens.length;
      assert.equal(batchedText, singleText, `batches of ${size}`);
      assert.equal(numTokens, ids.length);
      assert.equal(batched.numReleasedTokens, ids.length);
    }
    assert.equal(singleText, model.decode(ids));
  } finally {
    await model.close();
  }
});
