// Random walks through the real fixture vocabularies: at each step a random allowed token (a
// model at temperature 1 that only ever sees the mask), then a steer to the end. Every completed
// output must parse and validate against its schema (ajv), or match its regex / choice / grammar.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { GrammarCompiler } from '../src/compiler.ts';
import { schemaSuite } from '../src/testing/index.ts';
import { loadVocabulary, randomWalk, seededRandom } from './helpers.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const ajv = addFormats(new Ajv2020({ strict: false }));
const walksPerSchema = 6;

for (const name of ['demo', 'tinyLlama', 'tinyQwen3'] as const) {
  describe(`json_schema outputs on ${name}`, () => {
    for (const [schemaName, schema] of Object.entries(schemaSuite)) {
      it(`${schemaName}: every completed output validates`, async () => {
        const vocabulary = await loadVocabulary(name);
        const grammar = new GrammarCompiler(vocabulary).compile({ type: 'json_schema', schema });
        const validate = ajv.compile(schema);
        const random = seededRandom(schemaName.length * 31 + name.length);
        for (let i = 0; i < walksPerSchema; i++) {
          const walk = randomWalk(grammar.newMatcher(), vocabulary, random, { freeSteps: 30 });
          assert.ok(walk.completed, `did not finish: ${walk.text}`);
          const value: unknown = JSON.parse(walk.text);
          assert.ok(validate(value), `${walk.text}\n${JSON.stringify(validate.errors)}`);
        }
      });
    }

    it('json_object: every completed output is a JSON object', async () => {
      const vocabulary = await loadVocabulary(name);
      const grammar = new GrammarCompiler(vocabulary).compile({ type: 'json_object' });
      const random = seededRandom(5);
      for (let i = 0; i < 20; i++) {
        const walk = randomWalk(grammar.newMatcher(), vocabulary, random, { freeSteps: 30 });
        assert.ok(walk.completed);
        const value: unknown = JSON.parse(walk.text);
        assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), walk.text);
      }
    });
  });

  describe(`regex, choice and grammar outputs on ${name}`, () => {
    const regexes = [
      '[a-z]{2,8}@[a-z]{2,6}\\.(com|net)',
      '\\d{4}-\\d{2}-\\d{2}',
      '(yes|no)( maybe)?',
      '[A-Z][a-z]*( [A-Z][a-z]*){0,3}',
    ];
    for (const pattern of regexes) {
      it(`regex ${pattern}`, async () => {
        const vocabulary = await loadVocabulary(name);
        const grammar = new GrammarCompiler(vocabulary).compile({ type: 'regex', pattern });
        const random = seededRandom(pattern.length);
        for (let i = 0; i < 15; i++) {
          const walk = randomWalk(grammar.newMatcher(), vocabulary, random, { freeSteps: 10 });
          assert.ok(walk.completed);
          assert.match(walk.text, new RegExp(`^(?:${pattern})$`, 'u'));
        }
      });
    }

    it('choice', async () => {
      const vocabulary = await loadVocabulary(name);
      const choices = ['positive', 'negative', 'neutral', 'neg'];
      const grammar = new GrammarCompiler(vocabulary).compile({ type: 'choice', choices });
      const random = seededRandom(9);
      const seen = new Set<string>();
      for (let i = 0; i < 40; i++) {
        const walk = randomWalk(grammar.newMatcher(), vocabulary, random, { freeSteps: 10 });
        assert.ok(walk.completed);
        assert.ok(choices.includes(walk.text), walk.text);
        seen.add(walk.text);
      }
      assert.ok(seen.size >= 3, [...seen].join());
    });

    it('EBNF arithmetic', async () => {
      const vocabulary = await loadVocabulary(name);
      const ebnf = [
        'root ::= expr',
        'expr ::= term (("+" | "-") term)*',
        'term ::= factor (("*" | "/") factor)*',
        'factor ::= [0-9]{1,3} | "(" expr ")"',
      ].join('\n');
      const grammar = new GrammarCompiler(vocabulary).compile({ type: 'grammar', grammar: ebnf });
      const random = seededRandom(11);
      for (let i = 0; i < 15; i++) {
        const walk = randomWalk(grammar.newMatcher(), vocabulary, random, { freeSteps: 20 });
        assert.ok(walk.completed);
        assert.match(walk.text, /^[0-9+\-*/()]+$/);
        // Balanced and well-formed: JavaScript evaluates it (the grammar is a subset of JS's).
        assert.equal(typeof new Function(`return (${walk.text});`)(), 'number', walk.text);
      }
    });
  });
}

it('the suite holds at least 30 schemas', () => {
  assert.ok(Object.keys(schemaSuite).length >= 30);
});
