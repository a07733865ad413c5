// The JSON Schema suite of the property test: nested objects, arrays, enums, bounded numbers,
// optional fields, anyOf / oneOf, $ref (recursive too), tuples, string lengths, patterns and
// formats, as OpenAI strict mode and Pydantic write them.
export const schemaSuite: Record<string, object> = {
  person: {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0, maximum: 130 } },
    required: ['name', 'age'],
    additionalProperties: false,
  },
  nestedAddress: {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 12 },
      address: {
        type: 'object',
        properties: {
          street: { type: 'string', maxLength: 10 },
          zip: { type: 'string', pattern: '^[0-9]{5}$' },
        },
        required: ['street', 'zip'],
        additionalProperties: false,
      },
    },
    required: ['name', 'address'],
    additionalProperties: false,
  },
  stringArray: { type: 'array', items: { type: 'string', maxLength: 8 }, minItems: 1, maxItems: 4 },
  colorEnum: { type: 'string', enum: ['red', 'green', 'blue', 'light "grey"'] },
  unitInterval: { type: 'number', minimum: 0, maximum: 1 },
  exclusiveRange: { type: 'number', exclusiveMinimum: -5.5, exclusiveMaximum: 10.25 },
  negativeIntegers: { type: 'integer', minimum: -100, maximum: -3 },
  exclusiveIntegers: { type: 'integer', exclusiveMinimum: 10, exclusiveMaximum: 20 },
  allOptional: {
    type: 'object',
    properties: { a: { type: 'boolean' }, b: { type: 'null' }, c: { type: 'integer', maximum: 9 } },
    additionalProperties: false,
  },
  mixedOptional: {
    type: 'object',
    properties: {
      first: { type: 'integer', minimum: 0, maximum: 5 },
      second: { type: 'string', maxLength: 5 },
      third: { type: 'boolean' },
      fourth: { type: 'number', minimum: 0, maximum: 2 },
    },
    required: ['second', 'fourth'],
    additionalProperties: false,
  },
  anyOfScalar: {
    anyOf: [
      { type: 'string', maxLength: 6 },
      { type: 'integer', minimum: 0, maximum: 999 },
    ],
  },
  anyOfObjects: {
    anyOf: [
      {
        type: 'object',
        properties: { kind: { const: 'circle' }, r: { type: 'number', minimum: 0, maximum: 10 } },
        required: ['kind', 'r'],
        additionalProperties: false,
      },
      {
        type: 'object',
        properties: { kind: { const: 'square' }, side: { type: 'integer', minimum: 1, maximum: 9 } },
        required: ['kind', 'side'],
        additionalProperties: false,
      },
    ],
  },
  oneOfDisjoint: { oneOf: [{ type: 'string', maxLength: 4 }, { type: 'null' }, { type: 'boolean' }] },
  nullableTypeArray: { type: ['string', 'null'], maxLength: 5 },
  defsReuse: {
    $defs: {
      point: {
        type: 'object',
        properties: {
          x: { type: 'integer', minimum: -9, maximum: 9 },
          y: { type: 'integer', minimum: -9, maximum: 9 },
        },
        required: ['x', 'y'],
        additionalProperties: false,
      },
    },
    type: 'object',
    properties: { from: { $ref: '#/$defs/point' }, to: { $ref: '#/$defs/point' } },
    required: ['from', 'to'],
    additionalProperties: false,
  },
  recursiveTree: {
    $defs: {
      node: {
        type: 'object',
        properties: {
          value: { type: 'integer', minimum: 0, maximum: 99 },
          children: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 },
        },
        required: ['value', 'children'],
        additionalProperties: false,
      },
    },
    $ref: '#/$defs/node',
  },
  recursiveRoot: {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 4 },
      next: { anyOf: [{ $ref: '#' }, { type: 'null' }] },
    },
    required: ['name', 'next'],
    additionalProperties: false,
  },
  tuple: {
    type: 'array',
    prefixItems: [
      { type: 'string', maxLength: 5 },
      { type: 'integer', minimum: 0, maximum: 50 },
      { type: 'boolean' },
    ],
    items: false,
    minItems: 3,
  },
  tupleWithRest: {
    type: 'array',
    prefixItems: [{ const: 'head' }],
    items: { type: 'integer', minimum: 0, maximum: 9 },
    minItems: 1,
    maxItems: 5,
  },
  stringLengths: { type: 'string', minLength: 3, maxLength: 6 },
  pattern: { type: 'string', pattern: '^[A-Z]{3}-[0-9]{2,4}$' },
  patternWithQuotes: { type: 'string', pattern: '^(a"b|c\\\\d|e\\nf)+$' },
  formats: {
    type: 'object',
    properties: {
      day: { type: 'string', format: 'date' },
      at: { type: 'string', format: 'date-time' },
      id: { type: 'string', format: 'uuid' },
      mail: { type: 'string', format: 'email' },
      ip: { type: 'string', format: 'ipv4' },
      clock: { type: 'string', format: 'time' },
    },
    required: ['day', 'at', 'id', 'mail', 'ip', 'clock'],
    additionalProperties: false,
  },
  constValue: { const: { a: [1, 'two', null] } },
  booleanAndNull: {
    type: 'object',
    properties: { flag: { type: 'boolean' }, nothing: { type: 'null' } },
    required: ['flag', 'nothing'],
    additionalProperties: false,
  },
  stringMap: { type: 'object', additionalProperties: { type: 'integer', minimum: 0, maximum: 9 } },
  freeObject: { type: 'object' },
  arrayOfObjects: {
    type: 'array',
    items: {
      type: 'object',
      properties: { id: { type: 'integer', minimum: 1, maximum: 99 }, ok: { type: 'boolean' } },
      required: ['id', 'ok'],
      additionalProperties: false,
    },
    maxItems: 3,
  },
  deepNesting: {
    type: 'object',
    properties: {
      l1: {
        type: 'object',
        properties: {
          l2: {
            type: 'object',
            properties: { l3: { type: 'array', items: { enum: [1, 2, 3] }, maxItems: 3 } },
            required: ['l3'],
            additionalProperties: false,
          },
        },
        required: ['l2'],
        additionalProperties: false,
      },
    },
    required: ['l1'],
    additionalProperties: false,
  },
  unboundedNumber: { type: 'number' },
  unboundedInteger: { type: 'integer' },
  mixedEnum: { enum: [1, 'a', null, true, 2.5, { k: 'v' }] },
  anyOfRef: {
    $defs: { tag: { type: 'string', enum: ['x', 'y'] } },
    type: 'object',
    properties: { value: { anyOf: [{ $ref: '#/$defs/tag' }, { type: 'integer', minimum: 0, maximum: 3 }] } },
    required: ['value'],
    additionalProperties: false,
  },
  anything: {},
  escapedEnum: { enum: ['a"b', 'back\\slash', 'line\nbreak', 'tab\there'] },
  minItemsEnums: { type: 'array', items: { enum: ['up', 'down'] }, minItems: 2, maxItems: 3 },
  oddKeys: {
    type: 'object',
    properties: { 'we"ird key': { type: 'integer', minimum: 0, maximum: 1 }, 'sp ace': { type: 'boolean' } },
    required: ['we"ird key', 'sp ace'],
    additionalProperties: false,
  },
  openAiStrict: {
    type: 'object',
    properties: {
      title: { type: 'string', maxLength: 20 },
      rating: { type: 'integer', minimum: 1, maximum: 5 },
      summary: { anyOf: [{ type: 'string', maxLength: 10 }, { type: 'null' }] },
      tags: { type: 'array', items: { type: 'string', enum: ['a', 'b', 'c'] }, maxItems: 3 },
    },
    required: ['title', 'rating', 'summary', 'tags'],
    additionalProperties: false,
  },
  pydanticStyle: {
    $defs: {
      Item: {
        properties: {
          name: { title: 'Name', type: 'string', maxLength: 6 },
          price: { title: 'Price', type: 'number', exclusiveMinimum: 0, maximum: 100 },
        },
        required: ['name', 'price'],
        title: 'Item',
        type: 'object',
      },
    },
    properties: {
      items: { items: { $ref: '#/$defs/Item' }, title: 'Items', type: 'array', maxItems: 2 },
      note: { anyOf: [{ type: 'string', maxLength: 5 }, { type: 'null' }], default: null, title: 'Note' },
    },
    required: ['items'],
    title: 'Order',
    type: 'object',
  },
};
