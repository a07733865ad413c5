// Tokenizer, chat template and incremental detokenizer against every fixture's golden.json.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { seededRandom } from '@tandem/common';
import { allFixtures } from '@tandem/common/testing';
import { IncrementalDetokenizer } from '../src/detokenizer.ts';
import { TextTokenizer } from '../src/tokenizer.ts';

/** Streams ids in random-sized pieces; checks every emitted piece and the total. */
function streamDecode(tokenizer: TextTokenizer, ids: readonly number[], random: () => number): string[] {
  const full = tokenizer.decode(ids);
  const detokenizer = new IncrementalDetokenizer(tokenizer);
  const pieces: string[] = [];
  let text = '';
  for (let i = 0; i < ids.length; ) {
    const size = 1 + Math.floor(random() * 3);
    const piece = detokenizer.push(ids.slice(i, i + size));
    i += size;
    assert.ok(!piece.endsWith('\uFFFD'), `a piece ends in a broken character: ${JSON.stringify(piece)}`);
    text += piece;
    assert.ok(
      full.startsWith(text),
      `streamed text ${JSON.stringify(text)} is not a prefix of ${JSON.stringify(full)}`,
    );
    pieces.push(piece);
  }
  text += detokenizer.flush();
  assert.equal(text, full);
  assert.equal(detokenizer.text, full);
  return pieces;
}

describe('tokenizer and detokenizer on every fixture', () => {
  for (const { name, dir, golden } of allFixtures()) {
    test(`${name}: prompts encode and outputs decode as the reference`, async () => {
      const tokenizer = await TextTokenizer.load(dir);
      for (const c of golden.text_cases) {
        assert.deepEqual(tokenizer.encode(c.prompt), c.prompt_ids);
        assert.equal(tokenizer.decode(c.greedy_ids), c.greedy_text);
        if (c.decode_prompt !== undefined) assert.equal(tokenizer.decode(c.prompt_ids), c.decode_prompt);
      }
      for (const c of golden.chat_cases ?? []) {
        assert.deepEqual(tokenizer.encodeChat(c.messages, { addGenerationPrompt: true }), c.prompt_ids);
        assert.equal(tokenizer.decode(c.greedy_ids), c.greedy_text);
      }
    });

    test(`${name}: streaming decode concatenates to the full decode`, async () => {
      const tokenizer = await TextTokenizer.load(dir);
      const random = seededRandom(1);
      const sequences = [
        ...golden.text_cases.flatMap((c) => [c.greedy_ids, c.prompt_ids]),
        ...(golden.chat_cases ?? []).flatMap((c) => [c.greedy_ids, c.prompt_ids]),
        ...(golden.cases ?? []).map((c) => c.greedy_ids),
      ];
      for (const ids of sequences) streamDecode(tokenizer, ids, random);
      for (const c of golden.text_cases) {
        const detokenizer = new IncrementalDetokenizer(tokenizer);
        const streamed = c.greedy_ids.map((id) => detokenizer.push([id])).join('') + detokenizer.flush();
        assert.equal(streamed, c.greedy_text);
      }
    });
  }

  test('multi-byte characters are never split mid-stream (byte-level BPE)', async () => {
    const tokenizer = await TextTokenizer.load(allFixtures()[5]!.dir);
    const text = 'héllo wörld — 你好，世界 🚀🧪 ça va? ✓';
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    assert.ok(ids.length > text.length / 2, 'the tiny vocabulary splits characters into byte tokens');
    const detokenizer = new IncrementalDetokenizer(tokenizer);
    let streamed = '';
    for (const id of ids) {
      const piece = detokenizer.push([id]);
      assert.ok(!piece.includes('\uFFFD'), `broken character in ${JSON.stringify(piece)}`);
      streamed += piece;
    }
    streamed += detokenizer.flush();
    assert.equal(streamed, text);
  });

  test('Metaspace: leading spaces survive a window restart; special tokens are skipped or kept', async () => {
    const tokenizer = await TextTokenizer.load(allFixtures()[0]!.dir);
    const text = 'def add(a, b):\n    return a + b  # two  spaces';
    const ids = tokenizer.encode(text);
    const random = seededRandom(3);
    for (let round = 0; round < 5; round++) streamDecode(tokenizer, ids, random);
    const withSpecial = new IncrementalDetokenizer(tokenizer, { skipSpecialTokens: false });
    const imEnd = tokenizer.tokenToId('<|im_end|>')!;
    const streamed = withSpecial.push([...ids, imEnd]) + withSpecial.flush();
    assert.equal(streamed, tokenizer.decode([...ids, imEnd], { skipSpecialTokens: false }));
    assert.ok(streamed.endsWith('<|im_end|>'));
  });
});
