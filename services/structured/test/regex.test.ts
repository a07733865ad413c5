import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { GrammarCompiler } from '../src/compiler.ts';
import { InvalidRegexError } from '../src/errors.ts';
import type { Vocabulary } from '../src/vocabulary.ts';
import { accepts, loadVocabulary, randomWalk, seededRandom } from './helpers.ts';

// Each pattern with the characters its test strings are drawn from.
const cases: [pattern: string, alphabet: string][] = [
  ['abc', 'abcx'],
  ['a|bc|', 'abc'],
  ['[a-c]+x?', 'abcdx'],
  ['[^a-c]{2,3}', 'abcdé-'],
  ['(ab|c)*d', 'abcd'],
  ['\\d{3}-\\d{2,4}', '0123-a'],
  ['\\w+@\\w+\\.(com|org)', 'ab_1@.comorg'],
  ['(?:x|y){0,2}z{1,}', 'xyz'],
  ['[\\s,]+', ' \t\n,a'],
  ['\\D\\W\\S', 'a1 -_'],
  ['a.c', 'abc\n\u00e9'],
  ['[\\]\\[-]+', '[]-a'],
  ['(?<year>\\d{4})-(?<month>0[1-9]|1[0-2])', '0129-'],
  ['^-?(0|[1-9][0-9]*)(\\.[0-9]+)?$', '-0129.'],
  ['\\x41\\u00e9\\u{1F600}', 'A\u00e9\u{1F600}'],
  ['a+?b*?c??', 'abc'],
  ['[😀-😂]+', '😀😁😂😃'],
  ['(a{2}){2}', 'a'],
];

function randomString(random: () => number, alphabet: string): string {
  const chars = Array.from(alphabet);
  const length = Math.floor(random() * 9);
  let out = '';
  for (let i = 0; i < length; i++) out += chars[Math.floor(random() * chars.length)];
  return out;
}

describe('regex constraints', () => {
  let vocabulary: Vocabulary;
  let compiler: GrammarCompiler;
  before(async () => {
    vocabulary = await loadVocabulary('demo');
    compiler = new GrammarCompiler(vocabulary);
  });

  for (const [pattern, alphabet] of cases) {
    it(`accepts exactly what RegExp /^(?:${pattern})$/u matches`, () => {
      const grammar = compiler.compile({ type: 'regex', pattern });
      const reference = new RegExp(`^(?:${pattern.replace(/^\^/, '').replace(/\$$/, '')})$`, 'u');
      const random = seededRandom(pattern.length);
      for (let i = 0; i < 3000; i++) {
        const text = randomString(random, alphabet);
        const expected = reference.test(text);
        assert.equal(
          accepts(() => grammar.newMatcher(), text),
          expected,
          JSON.stringify(text),
        );
      }
      for (let i = 0; i < 10; i++) {
        const walk = randomWalk(grammar.newMatcher(), vocabulary, random, { freeSteps: 8 });
        assert.ok(walk.completed);
        assert.match(walk.text, reference);
      }
    });
  }

  it('refuses what it does not support, naming the field and offset', () => {
    const bad: [string, RegExp][] = [
      ['(a', /missing "\)"/],
      ['[a-', /missing "]"/],
      ['a{3,1}', /max below min/],
      ['*a', /nothing to repeat/],
      ['(?=a)b', /lookaround/],
      ['(a)\\1', /unsupported escape "\\1"/],
      ['a\\bc', /word boundaries/],
      ['\\p{L}', /unsupported escape "\\p"/],
      ['a^b', /only supported at the start/],
      ['a$b', /only supported at the end/],
      ['[z-a]', /out of order/],
      [`${'('.repeat(5000)}a${')'.repeat(5000)}`, /nested deeper than 256/],
    ];
    for (const [pattern, message] of bad) {
      assert.throws(
        () => compiler.compile({ type: 'regex', pattern, param: 'structured_outputs.regex' }),
        (error: unknown) =>
          error instanceof InvalidRegexError &&
          error.param === 'structured_outputs.regex' &&
          error.code === 'invalid_argument' &&
          message.test(error.message),
        pattern,
      );
    }
  });
});
