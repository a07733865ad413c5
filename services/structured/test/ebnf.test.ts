import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { GrammarCompiler } from '../src/compiler.ts';
import { InvalidChoiceError, InvalidGrammarError } from '../src/errors.ts';
import { accepts, loadVocabulary } from './helpers.ts';

describe('EBNF grammars', () => {
  let compiler: GrammarCompiler;
  before(async () => {
    compiler = new GrammarCompiler(await loadVocabulary('demo'));
  });

  const check = (grammar: string, yes: string[], no: string[]): void => {
    const compiled = compiler.compile({ type: 'grammar', grammar });
    for (const text of yes)
      assert.ok(
        accepts(() => compiled.newMatcher(), text),
        `should accept ${JSON.stringify(text)}`,
      );
    for (const text of no)
      assert.ok(!accepts(() => compiled.newMatcher(), text), `should refuse ${JSON.stringify(text)}`);
  };

  it('GBNF: rules, literals, classes, grouping, alternation, quantifiers, comments', () => {
    check(
      `# a key=value list
root   ::= pair ("," ws pair)*   # at least one
pair   ::= key "=" value
key    ::= [a-z_] [a-z0-9_]*
value  ::= [0-9]+ | "\\"" [^"\\n]* "\\"" | "true" | "false"
ws     ::= [ \\t]?`,
      ['a=1', 'a=1, b_2="x y",c=true', 'k=""'],
      ['a=', '1=a', 'a=1,', 'a="x', 'a=1,  b=2'],
    );
  });

  it('repetition counts, optional groups, `.` and escapes', () => {
    check('root ::= "x"{2,3} ("-" [0-9]{2})? .', ['xx-12a', 'xxx!', 'xx\u00e9'], ['x-12a', 'xxxx!', 'xx-1a']);
    check('root ::= "\\x41\\u00e9\\t" [\\x30-\\x39]', ['A\u00e9\t5'], ['Ae\t5']);
  });

  it('recursion (balanced brackets), root named root, start or first rule', () => {
    check('root ::= "(" root ")" | ""', ['', '()', '((()))'], ['(()', ')(']);
    check('expr: term ("+" term)*\nterm: "x" | "(" expr ")"', ['x', 'x+x', '(x+(x))'], ['x+', '()']);
    check('value ::= "a"\nstart ::= value value', ['aa'], ['a']);
  });

  it('Lark style: name: rules, /regex/ terminals, case-insensitive literals', () => {
    check('start: WORD ("," WORD)*\nWORD: /[a-z]+\\d?/', ['ab', 'ab1,c', 'a,b,c9'], ['ab12', 'a,,b']);
    check('start: "select"i " " /[a-z]+/', ['SELECT x', 'SeLeCt abc'], ['selec x']);
  });

  const errors: [string, string, RegExp][] = [
    ['undefined rule', 'root ::= missing', /rule "missing" is not defined/],
    ['left recursion', 'root ::= root "a" | "b"', /left-recursive/],
    ['indirect left recursion', 'root ::= a\na ::= b "x"\nb ::= root | "y"', /left-recursive/],
    ['left recursion through a nullable rule', 'root ::= e root "x" | "y"\ne ::= "" | "z"', /left-recursive/],
    ['unterminated literal', 'root ::= "abc', /unterminated string/],
    ['unclosed group', 'root ::= ("a" | "b"', /missing "\)"/],
    ['unclosed class', 'root ::= [a-z', /missing "]"/],
    ['duplicate rule', 'root ::= "a"\nroot ::= "b"', /defined twice/],
    ['Lark directive', '%import common.WS\nstart: "a"', /directives/],
    ['bad regex terminal', 'start: /a(/', /missing "\)"/],
    ['no rules', '# nothing', /no rules/],
    ['matches nothing', 'root ::= a\na ::= a "x"', /left-recursive|no output/],
    ['empty language', 'root ::= "a" b\nb ::= "b" b', /no output satisfies/],
    ['absurd nesting', `root ::= ${'('.repeat(5000)}"a"${')'.repeat(5000)}`, /nested deeper than 256/],
  ];
  for (const [name, grammar, message] of errors) {
    it(`refuses: ${name}`, () => {
      assert.throws(
        () => compiler.compile({ type: 'grammar', grammar, param: 'structured_outputs.grammar' }),
        (error: unknown) =>
          error instanceof Error &&
          (error as { param?: string }).param === 'structured_outputs.grammar' &&
          (error as { code?: string }).code === 'invalid_argument' &&
          message.test(error.message),
      );
    });
  }

  it('an error says where (line and column)', () => {
    assert.throws(
      () => compiler.compile({ type: 'grammar', grammar: 'root ::= "a"\n  | @' }),
      (error: unknown) => error instanceof InvalidGrammarError && /line 2, column 5/.test(error.message),
    );
  });
});

describe('choice', () => {
  it('accepts exactly the listed strings, including prefixes of each other', async () => {
    const compiler = new GrammarCompiler(await loadVocabulary('demo'));
    const grammar = compiler.compile({ type: 'choice', choices: ['a', 'ab', 'b c', '{"x": 1}'] });
    for (const text of ['a', 'ab', 'b c', '{"x": 1}'])
      assert.ok(
        accepts(() => grammar.newMatcher(), text),
        text,
      );
    for (const text of ['', 'abc', 'b', 'A']) assert.ok(!accepts(() => grammar.newMatcher(), text), text);
    const matcher = grammar.newMatcher();
    assert.ok(matcher.acceptString('a'));
    assert.ok(matcher.canTerminate(), 'after "a" the output may end or go on to "ab"');
  });

  it('refuses an empty list or non-strings, naming the entry', async () => {
    const compiler = new GrammarCompiler(await loadVocabulary('demo'));
    assert.throws(
      () => compiler.compile({ type: 'choice', choices: [] }),
      (e: unknown) => e instanceof InvalidChoiceError && e.param === 'choice',
    );
    assert.throws(
      () =>
        compiler.compile({ type: 'choice', choices: ['a', 3 as unknown as string], param: 'guided_choice' }),
      (e: unknown) => e instanceof InvalidChoiceError && e.param === 'guided_choice[1]',
    );
  });
});
