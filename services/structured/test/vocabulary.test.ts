import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { CharSet } from '../src/char-set.ts';
import { GrammarCompiler } from '../src/compiler.ts';
import { VocabularyError } from '../src/errors.ts';
import { TokenTrie } from '../src/token-trie.ts';
import { Vocabulary } from '../src/vocabulary.ts';
import { checkpointDirs, loadVocabulary } from './helpers.ts';

function referenceTokenizer(dir: string): Tokenizer {
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as object;
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  return new Tokenizer(json, config);
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

for (const name of ['demo', 'tinyQwen3', 'tinyLlama', 'tinyLlama31'] as const) {
  describe(`vocabulary of ${name}`, () => {
    it('gives every ordinary token the bytes the reference decoder produces', async () => {
      const vocabulary = await loadVocabulary(name);
      const reference = referenceTokenizer(checkpointDirs[name]);
      let compared = 0;
      for (let id = 0; id < vocabulary.size; id++) {
        const bytes = vocabulary.tokenBytes[id];
        if (bytes === null || bytes === undefined) continue;
        let text: string;
        try {
          text = textDecoder.decode(bytes);
        } catch {
          continue; // part of a multi-byte character: the reference shows U+FFFD
        }
        // Metaspace decoders drop the leading space of a sequence's first token: put a token
        // without one first and compare what follows it.
        const anchor = reference.token_to_id('a') as number;
        const decoded = reference.decode([anchor, id], { skip_special_tokens: false });
        assert.equal(decoded, `a${text}`, `token ${id}`);
        compared++;
      }
      assert.ok(compared > vocabulary.size * 0.5, `compared ${compared} of ${vocabulary.size}`);
    });

    it('excludes added and special tokens and knows the EOS id', async () => {
      const vocabulary = await loadVocabulary(name);
      for (const id of [0, 1, 2, 3, 4]) assert.equal(vocabulary.tokenBytes[id], null, `id ${id}`);
      assert.deepEqual([...vocabulary.eosTokenIds], [2]);
    });
  });
}

describe('alphabet', () => {
  it('is every character for byte-level vocabularies (all 256 bytes are tokens)', async () => {
    const vocabulary = await loadVocabulary('demo');
    assert.ok(vocabulary.alphabet.equals(CharSet.all));
    assert.equal(vocabulary.encoding.type, 'byte_level');
  });

  it('is the characters spelled by tokens for a Metaspace vocabulary without byte fallback', async () => {
    const vocabulary = await loadVocabulary('tinyLlama');
    assert.equal(vocabulary.encoding.type, 'metaspace');
    assert.ok(vocabulary.alphabet.has(' '.codePointAt(0) as number), 'the ▁ token spells a space');
    for (const ch of '{}[]":,0123456789abcXYZ\n\t')
      assert.ok(vocabulary.alphabet.has(ch.codePointAt(0) as number), ch);
    assert.ok(!vocabulary.alphabet.has('é'.codePointAt(0) as number));
    assert.ok(!vocabulary.alphabet.has(0x2581), 'the ▁ character itself is never produced');
  });
});

describe('Metaspace with byte fallback (Llama 2 / Mistral style)', () => {
  const pieces: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) pieces[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  Object.assign(pieces, { '▁hello': 259, world: 260, '▁': 261 });
  const tokenizerJson = {
    model: { type: 'BPE', vocab: pieces, merges: [], byte_fallback: true, unk_token: '<unk>' },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    added_tokens: [
      { id: 0, content: '<unk>', special: true },
      { id: 1, content: '<s>', special: true },
      { id: 2, content: '</s>', special: true },
    ],
  };

  it('maps <0xNN> to byte NN and ▁ to a space, and spells every character', () => {
    const vocabulary = Vocabulary.fromTokenizerJson(tokenizerJson, { eos_token: '</s>' }, { vocabSize: 300 });
    assert.deepEqual(vocabulary.encoding, { type: 'metaspace', replacement: '▁', byteFallback: true });
    assert.deepEqual([...(vocabulary.tokenBytes[3 + 0xe9] as Uint8Array)], [0xe9]);
    assert.deepEqual(
      [...(vocabulary.tokenBytes[259] as Uint8Array)],
      [...new TextEncoder().encode(' hello')],
    );
    assert.equal(vocabulary.tokenBytes[299], null, 'ids past the tokenizer are never produced');
    assert.deepEqual([...vocabulary.eosTokenIds], [2]);
    assert.ok(vocabulary.alphabet.equals(CharSet.all));
  });

  it('gives non-special added tokens their text (tool-call tags) and special ones none', () => {
    const withTags = {
      ...tokenizerJson,
      added_tokens: [
        ...tokenizerJson.added_tokens,
        { id: 261, content: '<tool_call>', special: false },
        { id: 262, content: '<|im_start|>', special: true },
      ],
    };
    const vocabulary = Vocabulary.fromTokenizerJson(withTags, { eos_token: '</s>' }, { vocabSize: 300 });
    assert.equal(new TextDecoder().decode(vocabulary.tokenBytes[261] as Uint8Array), '<tool_call>');
    assert.equal(vocabulary.tokenBytes[262], null);
    const grammar = new GrammarCompiler(vocabulary).compile({ type: 'regex', pattern: '<tool_call>x' });
    const matcher = grammar.newMatcher();
    assert.ok(matcher.allowedTokenIds().includes(261), 'the tag may be written as its one token');
    assert.ok(matcher.acceptToken(261));
  });

  it('never gives an EOS id bytes, even when it is an ordinary vocabulary entry', () => {
    const vocabulary = Vocabulary.fromTokenizerJson(tokenizerJson, {}, { eosTokenIds: [260] });
    assert.equal(vocabulary.tokenBytes[260], null);
    assert.deepEqual([...vocabulary.eosTokenIds], [260]);
  });

  it('is refused by the compiler when it names no EOS id (a finished output could not end)', () => {
    const vocabulary = Vocabulary.fromTokenizerJson(tokenizerJson, {});
    assert.equal(vocabulary.eosTokenIds.length, 0);
    assert.throws(() => new GrammarCompiler(vocabulary), VocabularyError);
  });

  it('refuses a vocabSize below the largest id and a decoder of another kind', () => {
    assert.throws(() => Vocabulary.fromTokenizerJson(tokenizerJson, {}, { vocabSize: 10 }), VocabularyError);
    assert.throws(
      () => Vocabulary.fromTokenizerJson({ ...tokenizerJson, decoder: { type: 'WordPiece' } }, {}),
      (error: unknown) => error instanceof VocabularyError && error.param === 'decoder',
    );
  });
});

describe('token trie', () => {
  it('holds every grammar token once, in byte order, with contiguous subtrees', async () => {
    const vocabulary = await loadVocabulary('demo');
    const trie = new TokenTrie(vocabulary);
    const expected = vocabulary.tokenBytes.filter((b) => (b?.length ?? 0) > 0).length;
    assert.equal(trie.tokenIds.length, expected);
    assert.equal(new Set(trie.tokenIds).size, expected);
    // Rebuild each node's prefix and check its tokens spell it.
    const prefix: number[] = [];
    for (let node = 1; node < trie.numNodes; node++) {
      prefix.length = (trie.depth[node] as number) - 1;
      prefix.push(trie.byte[node] as number);
      for (let i = trie.tokensStart[node] as number; i < (trie.tokensEnd[node] as number); i++) {
        const bytes = vocabulary.tokenBytes[trie.tokenIds[i] as number] as Uint8Array;
        assert.deepEqual([...bytes.subarray(0, prefix.length)], prefix);
        if (i < (trie.ownEnd[node] as number)) assert.equal(bytes.length, prefix.length);
      }
      assert.ok((trie.subtreeEnd[node] as number) > node);
    }
  });
});
