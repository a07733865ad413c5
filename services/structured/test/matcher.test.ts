import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConstraintSpec, GrammarCompiler } from '../src/compiler.ts';
import { bitmaskToIds, type GrammarMatcher } from '../src/matcher.ts';
import type { Vocabulary } from '../src/vocabulary.ts';
import { loadVocabulary, seededRandom } from './helpers.ts';

const specs: ConstraintSpec[] = [
  { type: 'json_object' },
  {
    type: 'json_schema',
    schema: {
      type: 'object',
      properties: {
        id: { type: 'integer', minimum: -20, maximum: 300 },
        tags: { type: 'array', items: { enum: ['red', 'green', 'blue'] }, maxItems: 3 },
        child: { anyOf: [{ $ref: '#' }, { type: 'null' }] },
        note: { type: 'string', maxLength: 6 },
      },
      required: ['id', 'child'],
      additionalProperties: false,
    },
  },
  { type: 'grammar', grammar: 'root ::= list\nlist ::= "[" (item ("," item)*)? "]"\nitem ::= [a-z]+ | list' },
  {
    type: 'json_schema',
    schema: {
      type: 'array',
      items: {
        anyOf: [
          { type: 'string', maxLength: 3 },
          { type: 'string', format: 'date' },
          { type: 'number', minimum: -1, maximum: 1 },
        ],
      },
      maxItems: 4,
    },
  },
  { type: 'regex', pattern: '(ab|a)*c{1,3}' },
  { type: 'choice', choices: ['alpha', 'alphabet', 'beta'] },
];

/** The mask by brute force: every token tried on a copy of the matcher. */
function bruteForceAllowed(matcher: GrammarMatcher, vocabulary: Vocabulary): number[] {
  const out: number[] = [];
  for (let id = 0; id < vocabulary.size; id++) if (matcher.clone().acceptToken(id)) out.push(id);
  return out;
}

const runs = [
  ['tinyLlama', true],
  ['tinyQwen3', true],
  ['demo', true],
  ['tinyQwen3', false], // masks classified lazily, on first use
] as const;

for (const [name, precompute] of runs) {
  describe(`matcher on ${name}${precompute ? '' : ' (lazy masks)'}`, () => {
    for (const spec of specs) {
      it(`${spec.type}: the mask is exactly the tokens acceptToken takes, at every step`, async () => {
        const vocabulary = await loadVocabulary(name);
        const grammar = new GrammarCompiler(vocabulary, { precompute }).compile(spec);
        const random = seededRandom(17);
        const mask = new Uint32Array(Math.ceil(vocabulary.size / 32));
        for (let walk = 0; walk < 3; walk++) {
          const matcher = grammar.newMatcher();
          for (let step = 0; step < 24 && !matcher.isCompleted(); step++) {
            const count = matcher.fillNextTokenBitmask(mask);
            const allowed = [...bitmaskToIds(mask, count)];
            assert.deepEqual(allowed, bruteForceAllowed(matcher, vocabulary), `step ${step}`);
            assert.deepEqual([...matcher.allowedTokenIds()], allowed);
            assert.ok(allowed.length > 0);
            assert.equal(
              allowed.some((id) => vocabulary.eosTokenIds.includes(id)),
              matcher.canTerminate(),
            );
            assert.ok(matcher.acceptToken(allowed[Math.floor(random() * allowed.length)] as number));
          }
        }
      });
    }
  });
}

describe('matcher lifecycle', () => {
  it('ends with EOS only where the output may end, then allows nothing', async () => {
    const vocabulary = await loadVocabulary('demo');
    const grammar = new GrammarCompiler(vocabulary).compile({ type: 'regex', pattern: 'ab?' });
    const matcher = grammar.newMatcher();
    const eos = vocabulary.eosTokenIds[0] as number;
    assert.equal(matcher.canTerminate(), false);
    assert.equal(matcher.acceptToken(eos), false);
    assert.ok(matcher.acceptString('a'));
    assert.equal(matcher.canTerminate(), true);
    assert.equal(matcher.bytesToFinish(), 0);
    assert.ok(matcher.acceptToken(eos));
    assert.equal(matcher.isCompleted(), true);
    assert.equal(matcher.allowedTokenIds().length, 0);
    assert.equal(matcher.acceptString('b'), false);
  });

  it('refuses special tokens and leaves the state alone on a refused token', async () => {
    const vocabulary = await loadVocabulary('demo');
    const grammar = new GrammarCompiler(vocabulary).compile({ type: 'choice', choices: ['yes', 'no'] });
    const matcher = grammar.newMatcher();
    for (const special of [0, 1, 3, 4]) assert.equal(matcher.acceptToken(special), false);
    assert.equal(matcher.acceptString('maybe'), false);
    assert.ok(matcher.acceptString('y'));
    assert.equal(matcher.acceptString('o'), false);
    assert.equal(matcher.bytesToFinish(), 2);
    assert.ok(matcher.acceptString('es'));
    assert.ok(matcher.canTerminate());
  });

  it('clones are independent and reset goes back to the start', async () => {
    const vocabulary = await loadVocabulary('demo');
    const grammar = new GrammarCompiler(vocabulary).compile({ type: 'json_object' });
    const matcher = grammar.newMatcher();
    assert.ok(matcher.acceptString('{"a": ['));
    const copy = matcher.clone();
    assert.ok(copy.acceptString('1]}'));
    assert.ok(copy.canTerminate());
    assert.equal(matcher.canTerminate(), false);
    assert.ok(matcher.acceptString('{"b": null}]}'));
    assert.ok(matcher.canTerminate());
    matcher.reset();
    assert.equal(matcher.acceptString('['), false);
    assert.ok(matcher.acceptString('{}'));
  });

  it('compiles a spec once per compiler (canonical key)', async () => {
    const vocabulary = await loadVocabulary('demo');
    const compiler = new GrammarCompiler(vocabulary);
    const a = compiler.compile({
      type: 'json_schema',
      schema: { type: 'object', properties: { x: { type: 'string' } } },
    });
    const b = compiler.compile({
      schema: { properties: { x: { type: 'string' } }, type: 'object' },
      type: 'json_schema',
    });
    assert.equal(a, b);
  });

  it('drops least recently used grammars beyond the count and memory budgets', async () => {
    const vocabulary = await loadVocabulary('demo');
    const spec = (pattern: string): ConstraintSpec => ({ type: 'regex', pattern });
    const byCount = new GrammarCompiler(vocabulary, { cacheSize: 2 });
    const a = byCount.compile(spec('a+'));
    byCount.compile(spec('b+'));
    assert.equal(byCount.compile(spec('a+')), a, 'still cached');
    byCount.compile(spec('c+'));
    assert.notEqual(byCount.compile(spec('b+')), null);
    assert.equal(byCount.compile(spec('a+')) === a, false, 'a was the least recently used');
    const byBytes = new GrammarCompiler(vocabulary, { cacheBytes: 1 });
    const x = byBytes.compile(spec('x+'));
    assert.ok(x.byteSize > 1);
    assert.equal(byBytes.compile(spec('x+')), x, 'the newest grammar always stays');
    byBytes.compile(spec('y+'));
    assert.notEqual(byBytes.compile(spec('x+')), x);
  });

  it('fills a mask longer than the tokenizer when the model vocabulary is padded', async () => {
    const { Vocabulary } = await import('../src/vocabulary.ts');
    const { checkpointDirs } = await import('./helpers.ts');
    const padded = await Vocabulary.load(checkpointDirs.tinyLlama, { vocabSize: 1000 });
    const grammar = new GrammarCompiler(padded).compile({ type: 'regex', pattern: '[a-z]+' });
    const ids = grammar.newMatcher().allowedTokenIds();
    assert.ok(ids.length > 10);
    assert.ok(ids.every((id) => id < 512));
  });
});
