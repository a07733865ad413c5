import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { InvalidArgumentError } from '@tandem/common';
import { GrammarCompiler } from '../src/compiler.ts';
import {
  InvalidRegexError,
  InvalidSchemaError,
  UnsatisfiableConstraintError,
  UnsupportedSchemaError,
} from '../src/errors.ts';
import { accepts, loadVocabulary } from './helpers.ts';

const base = 'response_format.json_schema.schema';

describe('json_schema', () => {
  let compiler: GrammarCompiler;
  let compact: GrammarCompiler;
  before(async () => {
    const vocabulary = await loadVocabulary('demo');
    compiler = new GrammarCompiler(vocabulary);
    compact = new GrammarCompiler(vocabulary, { json: { whitespace: 'none' } });
  });

  const check = (schema: unknown, yes: string[], no: string[], using = () => compiler): void => {
    const grammar = using().compile({ type: 'json_schema', schema });
    for (const text of yes)
      assert.ok(
        accepts(() => grammar.newMatcher(), text),
        `should accept ${text}`,
      );
    for (const text of no) assert.ok(!accepts(() => grammar.newMatcher(), text), `should refuse ${text}`);
  };

  it('objects: declared order, required members, optional ones may be left out', () => {
    check(
      {
        type: 'object',
        properties: { a: { type: 'integer' }, b: { type: 'string' }, c: { type: 'boolean' } },
        required: ['b'],
        additionalProperties: false,
      },
      [
        '{"b":"x"}',
        '{"a":1,"b":"x"}',
        '{"a": 1, "b": "x", "c": true}',
        '{"b":"","c":false}',
        '{\n  "a": 1,\n  "b": "x"\n}',
      ],
      [
        '{}',
        '{"a":1}',
        '{"b":"x","a":1}',
        '{"b":"x",}',
        '{"b":"x","d":1}',
        '{"a":1,,"b":"x"}',
        '{ "b":"x"} ',
      ],
    );
  });

  it('objects with only optional members, and maps', () => {
    check(
      { type: 'object', properties: { a: { type: 'null' }, b: { type: 'null' } } },
      ['{}', '{"a":null}', '{"b":null}', '{"a":null,"b":null}', '{ }'],
      ['{"b":null,"a":null}', '{,}', '{"a":null,}'],
    );
    check(
      { type: 'object', additionalProperties: { type: 'integer', minimum: 0, maximum: 9 } },
      ['{}', '{"x":1}', '{"x":1,"y y":9}'],
      ['{"x":10}', '{"x":"1"}'],
    );
    check({ type: 'object', additionalProperties: false }, ['{}', '{ }'], ['{"a":1}']);
  });

  it('whitespace is bounded, and absent in compact mode', () => {
    const schema = { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] };
    check(
      schema,
      ['{"a":1}', '{ "a": 1 }', `{\n${' '.repeat(20)}"a": 1\n}`],
      [`{\n${' '.repeat(21)}"a": 1}`, '{  "a":1}'],
    );
    check(schema, ['{"a":1}'], ['{ "a":1}', '{"a": 1}'], () => compact);
  });

  it('arrays: items, prefixItems, minItems / maxItems', () => {
    check(
      { type: 'array', items: { type: 'integer' }, minItems: 1, maxItems: 3 },
      ['[1]', '[1,2,3]', '[ 1, 2 ]'],
      ['[]', '[1,2,3,4]', '[1,]'],
    );
    check(
      { type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }], items: false },
      ['[]', '["a"]', '["a",1]'],
      ['[1]', '["a",1,2]'],
    );
    check(
      { type: 'array', prefixItems: [{ const: 'x' }], items: { type: 'boolean' }, minItems: 2 },
      ['["x",true]', '["x",true,false]'],
      ['["x"]', '[true,true]'],
    );
    check({ type: 'array' }, ['[]', '[1,"a",{"b":[null]}]'], ['[,]']);
  });

  it('enum, const, type arrays, anyOf / oneOf, allOf of one', () => {
    check({ enum: ['a', 1, null, [true]] }, ['"a"', '1', 'null', '[true]'], ['"b"', '[ true]', '2']);
    check({ type: 'string', enum: ['a', 1] }, ['"a"'], ['1']);
    check({ const: 'a"b' }, ['"a\\"b"'], ['"a"b"']);
    check({ type: ['integer', 'null'] }, ['1', 'null'], ['"1"', '1.5']);
    check(
      { anyOf: [{ type: 'integer' }, { type: 'string', maxLength: 1 }] },
      ['12', '"a"'],
      ['"ab"', 'true'],
    );
    check({ oneOf: [{ type: 'boolean' }, { type: 'null' }] }, ['true', 'null'], ['0']);
    check({ allOf: [{ type: 'boolean' }], description: 'x' }, ['false'], ['null']);
    check({}, ['1', '"x"', '{"a":[]}', 'null'], ['x']);
    check(true, ['[1]'], ['']);
  });

  it('$ref to $defs, definitions and the root, recursion included', () => {
    check(
      {
        $defs: { leaf: { type: 'integer' } },
        definitions: {
          pair: {
            type: 'array',
            prefixItems: [{ $ref: '#/$defs/leaf' }, { $ref: '#/$defs/leaf' }],
            items: false,
            minItems: 2,
          },
        },
        $ref: '#/definitions/pair',
      },
      ['[1,2]'],
      ['[1]', '["a",2]'],
    );
    check(
      {
        type: 'object',
        properties: { next: { anyOf: [{ $ref: '#' }, { type: 'null' }] } },
        required: ['next'],
      },
      ['{"next":null}', '{"next":{"next":{"next":null}}}'],
      ['{"next":{}}', '{"next":{"next":1}}'],
    );
  });

  it('strings: lengths in characters (escapes count one), patterns on the decoded text, formats', () => {
    check(
      { type: 'string', minLength: 2, maxLength: 3 },
      ['"ab"', '"abc"', '"a\\n"', '"\\u00e9é"', '"日本"'],
      ['"a"', '"abcd"', '"\\ud83d\\ude00x"'],
    );
    check({ type: 'string', pattern: '^a"b\\\\c$' }, ['"a\\"b\\\\c"'], ['"a"b\\c"']);
    check({ type: 'string', pattern: '[0-9]{2}' }, ['"12"'], ['"1"', '"123"']);
    check(
      { type: 'string', format: 'date' },
      ['"2024-02-28"', '"1999-12-31"'],
      ['"2024-02-30"', '"2024-13-01"', '"24-01-01"'],
    );
    check(
      { type: 'string', format: 'date-time' },
      ['"2024-01-02T03:04:05Z"', '"2024-01-02T03:04:05.123+01:00"'],
      ['"2024-01-02 03:04:05"'],
    );
    check(
      { type: 'string', format: 'uuid' },
      ['"123e4567-e89b-12d3-a456-426614174000"'],
      ['"123e4567e89b12d3a456426614174000"'],
    );
    check({ type: 'string', format: 'email' }, ['"a.b@example.com"'], ['"a@b"', '"@example.com"']);
  });

  it('free JSON strings take escapes but never raw control characters or lone surrogates', () => {
    check(
      { type: 'string' },
      ['""', '"a\\"b"', '"\\\\"', '"\\/\\b\\f\\n\\r\\t"', '"\\u0041"', '"é"'],
      ['"\n"', '"\\x"', '"\\ud800"', '"a'],
    );
  });

  it('json_object: any object, nothing else', () => {
    const grammar = compiler.compile({ type: 'json_object' });
    for (const text of ['{}', '{"a":1}', '{"a":{"b":[1,2,{"c":null}]},"d":"e"}', '{\n  "a": [ ]\n}']) {
      assert.ok(
        accepts(() => grammar.newMatcher(), text),
        text,
      );
    }
    for (const text of ['[]', '1', '"a"', '{"a"}', '{"a":1,}'])
      assert.ok(!accepts(() => grammar.newMatcher(), text), text);
  });

  it('characters the vocabulary cannot spell are left out, and a schema needing them is refused', async () => {
    const metaspace = new GrammarCompiler(await loadVocabulary('tinyLlama'));
    const grammar = metaspace.compile({ type: 'json_schema', schema: { enum: ['café', 'tea'] } });
    assert.ok(accepts(() => grammar.newMatcher(), '"tea"'));
    assert.ok(!accepts(() => grammar.newMatcher(), '"café"'));
    assert.throws(
      () => metaspace.compile({ type: 'json_schema', schema: { const: 'café' } }),
      (error: unknown) => error instanceof UnsatisfiableConstraintError && error.param === base,
    );
  });
});

describe('json_schema errors name the field', () => {
  let compiler: GrammarCompiler;
  before(async () => {
    compiler = new GrammarCompiler(await loadVocabulary('tinyLlama'));
  });

  const cases: [string, unknown, new (...args: never[]) => Error, string][] = [
    [
      'bad minimum',
      { type: 'object', properties: { age: { type: 'integer', minimum: 'x' } } },
      InvalidSchemaError,
      `${base}.properties.age.minimum`,
    ],
    [
      'unknown type',
      { type: 'object', properties: { a: { type: 'strin' } } },
      InvalidSchemaError,
      `${base}.properties.a.type`,
    ],
    ['unknown type in an array', { type: ['string', 'nul'] }, InvalidSchemaError, `${base}.type[1]`],
    [
      'unsupported keyword',
      { type: 'object', properties: { a: { type: 'number', multipleOf: 2 } } },
      UnsupportedSchemaError,
      `${base}.properties.a.multipleOf`,
    ],
    ['not', { not: { type: 'string' } }, UnsupportedSchemaError, `${base}.not`],
    [
      'maxLength below minLength',
      { type: 'string', minLength: 3, maxLength: 2 },
      InvalidSchemaError,
      `${base}.maxLength`,
    ],
    ['negative maxItems', { type: 'array', maxItems: -1 }, InvalidSchemaError, `${base}.maxItems`],
    [
      'bad pattern',
      { type: 'object', properties: { code: { type: 'string', pattern: '[a-' } } },
      InvalidRegexError,
      `${base}.properties.code.pattern`,
    ],
    ['unknown format', { type: 'string', format: 'uri' }, UnsupportedSchemaError, `${base}.format`],
    [
      'dangling $ref',
      { type: 'object', properties: { a: { $ref: '#/$defs/missing' } } },
      InvalidSchemaError,
      `${base}.properties.a.$ref`,
    ],
    ['remote $ref', { $ref: 'https://example.com/schema.json' }, UnsupportedSchemaError, `${base}.$ref`],
    [
      'error inside $defs',
      { $defs: { x: { type: 'integer', maximum: null } }, $ref: '#/$defs/x' },
      InvalidSchemaError,
      `${base}.$defs.x.maximum`,
    ],
    ['empty enum', { enum: [] }, InvalidSchemaError, `${base}.enum`],
    ['enum with a sibling', { enum: ['a'], minLength: 2 }, UnsupportedSchemaError, `${base}.minLength`],
    ['empty anyOf', { anyOf: [] }, InvalidSchemaError, `${base}.anyOf`],
    ['bad anyOf member', { anyOf: [{ type: 'string' }, 5] }, InvalidSchemaError, `${base}.anyOf[1]`],
    [
      'allOf of two',
      { allOf: [{ type: 'string' }, { maxLength: 2 }] },
      UnsupportedSchemaError,
      `${base}.allOf`,
    ],
    [
      'required not in properties',
      { type: 'object', properties: { a: {} }, required: ['a', 'b'] },
      UnsupportedSchemaError,
      `${base}.required[1]`,
    ],
    ['uniqueItems', { type: 'array', uniqueItems: true }, UnsupportedSchemaError, `${base}.uniqueItems`],
    [
      'items as an array',
      { type: 'array', items: [{ type: 'string' }] },
      UnsupportedSchemaError,
      `${base}.items`,
    ],
    [
      'false schema',
      { type: 'object', properties: { a: false }, required: ['a'] },
      UnsatisfiableConstraintError,
      `${base}.properties.a`,
    ],
    [
      'impossible bounds',
      { type: 'number', minimum: 5, maximum: 1 },
      UnsatisfiableConstraintError,
      `${base}.maximum`,
    ],
    [
      'minItems over the tuple',
      { type: 'array', prefixItems: [{}], items: false, minItems: 2 },
      UnsatisfiableConstraintError,
      `${base}.minItems`,
    ],
    ['not a schema', 'string', InvalidSchemaError, base],
  ];

  for (const [name, schema, errorClass, param] of cases) {
    it(`${name} -> ${errorClass.name} at ${param}`, () => {
      assert.throws(
        () => compiler.compile({ type: 'json_schema', schema }),
        (error: unknown) =>
          error instanceof errorClass &&
          error instanceof InvalidArgumentError &&
          error.param === param &&
          error.httpStatus === 400 &&
          error.openAiType === 'invalid_request_error',
      );
    });
  }

  it('refuses absurd nesting with a 400 instead of overflowing the stack', () => {
    let deep: object = { type: 'string' };
    for (let i = 0; i < 5000; i++) deep = { type: 'array', items: deep };
    assert.throws(
      () => compiler.compile({ type: 'json_schema', schema: deep }),
      (error: unknown) => error instanceof UnsupportedSchemaError && error.param === base,
    );
    let nested: object = { type: 'string' };
    for (let i = 0; i < 150; i++) nested = { type: 'array', items: nested };
    assert.throws(
      () => compiler.compile({ type: 'json_schema', schema: nested }),
      (error: unknown) =>
        error instanceof UnsupportedSchemaError && /nested deeper than 128/.test(error.message),
    );
  });

  it('uses the caller-given param as the base', () => {
    assert.throws(
      () =>
        compiler.compile({
          type: 'json_schema',
          schema: { type: 'integer', minimum: [] },
          param: 'guided_json',
        }),
      (error: unknown) => error instanceof InvalidSchemaError && error.param === 'guided_json.minimum',
    );
  });
});
