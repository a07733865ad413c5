// The JSON Schemas of the structured-output tests, as OpenAI users write them (strict objects,
// nested objects and arrays, enums, bounded numbers, optional fields, anyOf, $defs, recursion,
// formats, patterns). Every string and array is bounded, so that a model that only sees the mask
// (the fixtures have random weights: at temperature 1 they pick among the allowed tokens almost
// uniformly) still finishes well within max_tokens; the grammar does the rest. Most come as they
// are from the structured package's own suite; the ones whose strings or arrays it leaves
// unbounded (and two of this suite's own) are written here, bounded.
import { schemaSuite } from '@tandem/structured/testing';

/** Bounded versions of the suite's unbounded ones, and this suite's own. */
const bounded: Record<string, Record<string, unknown>> = {
  person: {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 10 },
      age: { type: 'integer', minimum: 0, maximum: 130 },
    },
    required: ['name', 'age'],
    additionalProperties: false,
  },
  nestedAddress: {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 8 },
      address: {
        type: 'object',
        properties: {
          street: { type: 'string', maxLength: 8 },
          zip: { type: 'string', pattern: '^[0-9]{5}$' },
          country: { enum: ['FR', 'DE', 'NO'] },
        },
        required: ['street', 'zip', 'country'],
        additionalProperties: false,
      },
    },
    required: ['name', 'address'],
    additionalProperties: false,
  },
  stringArray: { type: 'array', items: { type: 'string', maxLength: 6 }, minItems: 1, maxItems: 4 },
  bigBoundedNumber: { type: 'number', minimum: -1e6, maximum: 1e6 },
  allOptional: {
    type: 'object',
    properties: {
      a: { type: 'boolean' },
      b: { type: 'null' },
      c: { type: 'integer', maximum: 9, minimum: -9 },
    },
    additionalProperties: false,
  },
  recursiveList: {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 4 },
      next: { anyOf: [{ $ref: '#' }, { type: 'null' }] },
    },
    required: ['name', 'next'],
    additionalProperties: false,
  },
  formats: {
    type: 'object',
    properties: {
      day: { type: 'string', format: 'date' },
      at: { type: 'string', format: 'date-time' },
      id: { type: 'string', format: 'uuid' },
      ip: { type: 'string', format: 'ipv4' },
      clock: { type: 'string', format: 'time' },
    },
    required: ['day', 'at', 'id', 'ip', 'clock'],
    additionalProperties: false,
  },
  openAiStrict: {
    type: 'object',
    properties: {
      title: { type: 'string', maxLength: 12 },
      rating: { type: 'integer', minimum: 1, maximum: 5 },
      summary: { anyOf: [{ type: 'string', maxLength: 10 }, { type: 'null' }] },
      tags: { type: 'array', items: { type: 'string', enum: ['a', 'b', 'c'] }, maxItems: 3 },
    },
    required: ['title', 'rating', 'summary', 'tags'],
    additionalProperties: false,
  },
};

/** In the order the tests report them. */
const order = [
  'person',
  'nestedAddress',
  'stringArray',
  'colorEnum',
  'unitInterval',
  'exclusiveRange',
  'negativeIntegers',
  'exclusiveIntegers',
  'bigBoundedNumber',
  'allOptional',
  'mixedOptional',
  'anyOfScalar',
  'anyOfObjects',
  'nullableTypeArray',
  'defsReuse',
  'recursiveList',
  'tuple',
  'tupleWithRest',
  'stringLengths',
  'pattern',
  'formats',
  'constValue',
  'booleanAndNull',
  'arrayOfObjects',
  'deepNesting',
  'unboundedInteger',
  'unboundedNumber',
  'mixedEnum',
  'anyOfRef',
  'escapedEnum',
  'minItemsEnums',
  'openAiStrict',
  'pydanticStyle',
  'oddKeys',
];

/** Ours where written here, else the structured package's suite's. */
function schema(name: string): Record<string, unknown> {
  const own = bounded[name];
  if (own !== undefined) return own;
  const shared = schemaSuite[name];
  if (shared === undefined) throw new Error(`no schema named ${name}`);
  return shared as Record<string, unknown>;
}

export const e2eSchemas: Record<string, Record<string, unknown>> = Object.fromEntries(
  order.map((name) => [name, schema(name)]),
);
