// JSON Schema (OpenAI strict mode and the usual extensions) to a grammar whose every complete
// output validates against the schema. Properties come in declaration order; optional ones
// may be left out; $ref targets become rules (recursion stays a call); every bound is part of
// the grammar. Unsupported keywords and malformed values throw with the keyword's path.
import { InvalidSchemaError, UnsatisfiableConstraintError, UnsupportedSchemaError } from './errors.ts';
import {
  alt,
  type Expr,
  empty,
  type Grammar,
  literal,
  nothing,
  optional,
  type Rule,
  ref,
  repeat,
  separated,
  seq,
  star,
} from './grammar.ts';
import {
  anyValueRules,
  type JsonFormatOptions,
  jsonEscapedExpr,
  stringChar,
  whitespace,
} from './json-grammar.ts';
import { anyInteger, anyNumber, type Bound, integerRange, numberRange } from './number-range.ts';
import { parseRegex } from './regex.ts';
import {
  checkKeywords,
  isSchemaObject,
  join,
  keywordTypes,
  onlyAlongside,
  readCountRange,
  readNumber,
  readSchemaArray,
  readString,
  readTypes,
  type SchemaObject,
  type TypeName,
  typeOfValue,
} from './schema-keywords.ts';
import { formatPatterns } from './string-formats.ts';

/** `schema` as a grammar; errors name fields under `param` (the schema's own request path). */
export function jsonSchemaGrammar(schema: unknown, param: string, options: JsonFormatOptions = {}): Grammar {
  return new SchemaConverter(schema, param, options).convert();
}

/** Any JSON object (OpenAI's `response_format: {type: "json_object"}`). */
export function jsonObjectGrammar(options: JsonFormatOptions = {}): Grammar {
  const rules = anyValueRules(options);
  return { rules, root: 'json-object' };
}

/** Deeper schemas are refused (the conversion recurses). */
const maxNesting = 128;

class SchemaConverter {
  private readonly document: unknown;
  private readonly param: string;
  private readonly options: JsonFormatOptions;
  private readonly ws: Expr;
  private readonly rules = new Map<string, Rule>();
  private numRules = 0;
  private depth = 0;

  constructor(document: unknown, param: string, options: JsonFormatOptions) {
    this.document = document;
    this.param = param;
    this.options = options;
    this.ws = whitespace(options);
  }

  convert(): Grammar {
    const root = this.refRule('#', this.param);
    if (isSchemaObject(this.document)) {
      for (const container of ['$defs', 'definitions']) {
        const defs = this.document[container];
        if (defs === undefined) continue;
        if (!isSchemaObject(defs))
          throw new InvalidSchemaError(`"${container}" must be an object`, join(this.param, container));
        for (const name of Object.keys(defs))
          this.refRule(`#/${container}/${escapePointer(name)}`, join(this.param, '$ref'));
      }
    }
    return { rules: this.rules, root };
  }

  /** The rule for a `$ref` target (converted once; recursion refers back to the same rule). */
  private refRule(pointer: string, refPath: string): string {
    const name = `ref:${pointer}`;
    if (this.rules.has(name)) return name;
    const { schema, path } = this.resolve(pointer, refPath);
    this.rules.set(name, { expr: nothing });
    this.rules.set(name, { expr: this.value(schema, path) });
    return name;
  }

  private resolve(pointer: string, refPath: string): { schema: unknown; path: string } {
    if (pointer !== '#' && !pointer.startsWith('#/')) {
      throw new UnsupportedSchemaError(
        `only local $ref ("#/...") is supported, got ${JSON.stringify(pointer)}`,
        refPath,
      );
    }
    let schema: unknown = this.document;
    let path = this.param;
    for (const raw of pointer === '#' ? [] : pointer.slice(2).split('/')) {
      const key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
      const next: unknown = Array.isArray(schema)
        ? schema[Number(key)]
        : isSchemaObject(schema)
          ? schema[key]
          : undefined;
      if (next === undefined)
        throw new InvalidSchemaError(`$ref ${JSON.stringify(pointer)} does not resolve`, refPath);
      schema = next;
      path = Array.isArray(schema) ? join(path, Number(key)) : join(path, key);
    }
    return { schema, path };
  }

  /** A sub-schema behind a rule of its own, so the automaton decides whether to inline it. */
  private sub(schema: unknown, path: string): Expr {
    const name = `s${this.numRules++}:${path}`;
    this.rules.set(name, { expr: this.value(schema, path) });
    return ref(name);
  }

  private value(schema: unknown, path: string): Expr {
    if (++this.depth > maxNesting) {
      throw new UnsupportedSchemaError(
        `schemas nested deeper than ${maxNesting} levels are not supported`,
        path,
      );
    }
    try {
      return this.valueAt(schema, path);
    } finally {
      this.depth--;
    }
  }

  private valueAt(schema: unknown, path: string): Expr {
    if (schema === true) return this.anyValue();
    if (schema === false) throw new UnsatisfiableConstraintError('the schema `false` matches nothing', path);
    if (!isSchemaObject(schema))
      throw new InvalidSchemaError('a schema must be an object or a boolean', path);
    checkKeywords(schema, path);
    if (schema.$ref !== undefined) {
      onlyAlongside(schema, '$ref', [], path);
      if (typeof schema.$ref !== 'string')
        throw new InvalidSchemaError('"$ref" must be a string', join(path, '$ref'));
      return ref(this.refRule(schema.$ref, join(path, '$ref')));
    }
    if (schema.allOf !== undefined) {
      onlyAlongside(schema, 'allOf', [], path);
      const parts = readSchemaArray(schema, 'allOf', path) as unknown[];
      if (parts.length !== 1)
        throw new UnsupportedSchemaError(
          '"allOf" with more than one schema is not supported',
          join(path, 'allOf'),
        );
      return this.value(parts[0], join(join(path, 'allOf'), 0));
    }
    for (const keyword of ['anyOf', 'oneOf']) {
      if (schema[keyword] === undefined) continue;
      onlyAlongside(schema, keyword, [], path);
      const options = readSchemaArray(schema, keyword, path) as unknown[];
      return alt(...options.map((option, i) => this.sub(option, join(join(path, keyword), i))));
    }
    const types = readTypes(schema, path);
    if (schema.enum !== undefined || schema.const !== undefined) return this.enumeration(schema, types, path);
    const implied = types ?? [...new Set(Object.keys(schema).flatMap((key) => keywordTypes[key] ?? []))];
    if (implied.length === 0) return this.anyValue();
    return alt(...implied.map((type) => this.typed(type, schema, path)));
  }

  private typed(type: TypeName, schema: SchemaObject, path: string): Expr {
    switch (type) {
      case 'object':
        return this.object(schema, path);
      case 'array':
        return this.array(schema, path);
      case 'string':
        return this.string(schema, path);
      case 'number':
        return this.number(schema, path, false);
      case 'integer':
        return this.number(schema, path, true);
      case 'boolean':
        return alt(literal('true'), literal('false'));
      case 'null':
        return literal('null');
    }
  }

  private enumeration(schema: SchemaObject, types: TypeName[] | null, path: string): Expr {
    const keyword = schema.enum !== undefined ? 'enum' : 'const';
    onlyAlongside(schema, keyword, ['type', 'enum', 'const'], path);
    if (schema.enum !== undefined && schema.const !== undefined) {
      throw new UnsupportedSchemaError('"enum" and "const" together are not supported', join(path, 'const'));
    }
    let values: unknown[];
    if (keyword === 'enum') {
      if (!Array.isArray(schema.enum) || schema.enum.length === 0) {
        throw new InvalidSchemaError('"enum" must be a non-empty array', join(path, 'enum'));
      }
      values = schema.enum;
    } else values = [schema.const];
    const allowed = values.filter((v) => types === null || typeOfValue(v).some((t) => types.includes(t)));
    if (allowed.length === 0)
      throw new UnsatisfiableConstraintError(
        `no "${keyword}" value has an allowed type`,
        join(path, keyword),
      );
    return alt(...allowed.map((v) => literal(JSON.stringify(v))));
  }

  private object(schema: SchemaObject, path: string): Expr {
    const properties = schema.properties ?? {};
    if (!isSchemaObject(properties))
      throw new InvalidSchemaError('"properties" must be an object', join(path, 'properties'));
    const required = this.required(schema, properties, path);
    const additional = schema.additionalProperties;
    if (additional !== undefined && typeof additional !== 'boolean' && !isSchemaObject(additional)) {
      throw new InvalidSchemaError(
        '"additionalProperties" must be a boolean or a schema',
        join(path, 'additionalProperties'),
      );
    }
    const names = Object.keys(properties);
    const open = literal('{');
    const close = literal('}');
    const comma = seq(literal(','), this.ws);
    if (names.length === 0) {
      if (additional === false) return seq(open, this.ws, close);
      if (additional === undefined || additional === true) return this.anyObject();
      // A map: any keys, values of the additionalProperties schema.
      const member = seq(
        this.stringRule(),
        literal(':'),
        this.ws,
        this.sub(additional, join(path, 'additionalProperties')),
      );
      return seq(open, this.ws, optional(seq(member, star(seq(comma, member)), this.ws)), close);
    }
    const members = names.map((name) =>
      seq(
        literal(JSON.stringify(name)),
        literal(':'),
        this.ws,
        this.sub(properties[name], join(join(path, 'properties'), name)),
      ),
    );
    // In declaration order; optional members may be left out.
    const body = separated(
      members.map((member, i) => ({ expr: member, required: required.has(names[i] as string) })),
      comma,
    );
    return seq(open, this.ws, body, this.ws, close);
  }

  private required(schema: SchemaObject, properties: SchemaObject, path: string): Set<string> {
    const value = schema.required ?? [];
    if (!Array.isArray(value))
      throw new InvalidSchemaError('"required" must be an array of strings', join(path, 'required'));
    const out = new Set<string>();
    value.forEach((name, i) => {
      if (typeof name !== 'string')
        throw new InvalidSchemaError('"required" must hold strings', join(join(path, 'required'), i));
      if (!Object.hasOwn(properties, name)) {
        throw new UnsupportedSchemaError(
          `required property "${name}" is not in "properties"`,
          join(join(path, 'required'), i),
        );
      }
      out.add(name);
    });
    return out;
  }

  private array(schema: SchemaObject, path: string): Expr {
    if (schema.uniqueItems !== undefined && schema.uniqueItems !== false) {
      if (schema.uniqueItems !== true)
        throw new InvalidSchemaError('"uniqueItems" must be a boolean', join(path, 'uniqueItems'));
      throw new UnsupportedSchemaError('"uniqueItems": true is not supported', join(path, 'uniqueItems'));
    }
    const [minItems, maxItems] = readCountRange(schema, 'minItems', 'maxItems', path);
    const prefix =
      schema.prefixItems === undefined ? [] : (readSchemaArray(schema, 'prefixItems', path) as unknown[]);
    if (Array.isArray(schema.items)) {
      throw new UnsupportedSchemaError(
        '"items" as an array is not supported (use "prefixItems")',
        join(path, 'items'),
      );
    }
    const extraAllowed = schema.items !== false;
    const item = extraAllowed ? this.sub(schema.items ?? true, join(path, 'items')) : nothing;
    const positional = prefix.map((s, i) => this.sub(s, join(join(path, 'prefixItems'), i)));
    const longest = extraAllowed ? maxItems : Math.min(maxItems ?? prefix.length, prefix.length);
    if (longest !== null && longest < minItems) {
      throw new UnsatisfiableConstraintError(
        '"minItems" is more than the items allowed',
        join(path, 'minItems'),
      );
    }
    const comma = seq(literal(','), this.ws);
    const element = (i: number): Expr => (i < positional.length ? (positional[i] as Expr) : item);
    // Elements from position i on, each after a comma (position 0 has none).
    const from = (i: number): Expr => {
      if (longest !== null && i >= longest) return empty;
      if (i >= positional.length) {
        const least = Math.max(0, minItems - i);
        return repeat(seq(comma, item), least, longest === null ? null : longest - i);
      }
      const here = seq(comma, element(i), from(i + 1));
      return i < minItems ? here : optional(here);
    };
    if (longest === 0) return seq(literal('['), this.ws, literal(']'));
    const elements = seq(element(0), from(1));
    const inner = minItems > 0 ? seq(elements, this.ws) : optional(seq(elements, this.ws));
    return seq(literal('['), this.ws, inner, literal(']'));
  }

  private string(schema: SchemaObject, path: string): Expr {
    const [minLength, maxLength] = readCountRange(schema, 'minLength', 'maxLength', path);
    const hasLength = schema.minLength !== undefined || schema.maxLength !== undefined;
    const format = readString(schema, 'format', path);
    const pattern = readString(schema, 'pattern', path);
    const quote = literal('"');
    // Each kind of string is a shared rule: its masks are computed once per vocabulary.
    if (format !== null) {
      const formatPattern = formatPatterns[format];
      if (formatPattern === undefined) {
        throw new UnsupportedSchemaError(
          `string format "${format}" is not supported (${Object.keys(formatPatterns).join(', ')} are)`,
          join(path, 'format'),
        );
      }
      if (pattern !== null || hasLength) {
        throw new UnsupportedSchemaError(
          '"format" cannot be combined with "pattern" or lengths',
          join(path, 'format'),
        );
      }
      return this.sharedRule(`json-format:${format}`, () =>
        seq(quote, jsonEscapedExpr(parseRegex(formatPattern, join(path, 'format'))), quote),
      );
    }
    if (pattern !== null) {
      if (hasLength)
        throw new UnsupportedSchemaError('"pattern" cannot be combined with lengths', join(path, 'pattern'));
      return this.sharedRule(`json-pattern:${pattern}`, () =>
        seq(quote, jsonEscapedExpr(parseRegex(pattern, join(path, 'pattern'))), quote),
      );
    }
    if (!hasLength) return this.stringRule();
    return this.sharedRule(`json-string{${minLength},${maxLength ?? ''}}`, () =>
      seq(quote, repeat(stringChar, minLength, maxLength), quote),
    );
  }

  private sharedRule(name: string, build: () => Expr): Expr {
    if (!this.rules.has(name)) this.rules.set(name, { expr: build(), shared: true });
    return ref(name);
  }

  private number(schema: SchemaObject, path: string, integer: boolean): Expr {
    const minimum = readNumber(schema, 'minimum', path);
    const maximum = readNumber(schema, 'maximum', path);
    const exclusiveMinimum = readNumber(schema, 'exclusiveMinimum', path);
    const exclusiveMaximum = readNumber(schema, 'exclusiveMaximum', path);
    const lo = tighterLow(minimum, exclusiveMinimum);
    const hi = tighterHigh(maximum, exclusiveMaximum);
    if (lo === null && hi === null) return integer ? anyInteger : anyNumber;
    const boundPath = join(
      path,
      hi !== null
        ? hi.inclusive
          ? 'maximum'
          : 'exclusiveMaximum'
        : lo?.inclusive
          ? 'minimum'
          : 'exclusiveMinimum',
    );
    let expr: Expr;
    if (integer) {
      const from =
        lo === null ? null : lo.inclusive ? BigInt(Math.ceil(lo.value)) : BigInt(Math.floor(lo.value)) + 1n;
      const to =
        hi === null ? null : hi.inclusive ? BigInt(Math.floor(hi.value)) : BigInt(Math.ceil(hi.value)) - 1n;
      expr = integerRange(from, to);
    } else expr = numberRange(lo, hi);
    if (expr.type === 'alt' && expr.items.length === 0) {
      throw new UnsatisfiableConstraintError(
        `no ${integer ? 'integer' : 'number'} (of at most 15 digits) lies within the bounds`,
        boundPath,
      );
    }
    return expr;
  }

  private stringRule(): Expr {
    if (!this.rules.has('json-string'))
      this.rules.set('json-string', anyValueRules(this.options).get('json-string') as Rule);
    return ref('json-string');
  }

  private anyValue(): Expr {
    for (const [name, rule] of anyValueRules(this.options))
      if (!this.rules.has(name)) this.rules.set(name, rule);
    return ref('json-value');
  }

  private anyObject(): Expr {
    this.anyValue();
    return ref('json-object');
  }
}

function tighterLow(minimum: number | null, exclusive: number | null): Bound | null {
  if (minimum === null && exclusive === null) return null;
  if (exclusive === null || (minimum !== null && minimum > exclusive))
    return { value: minimum as number, inclusive: true };
  return { value: exclusive, inclusive: false };
}

function tighterHigh(maximum: number | null, exclusive: number | null): Bound | null {
  if (maximum === null && exclusive === null) return null;
  if (exclusive === null || (maximum !== null && maximum < exclusive))
    return { value: maximum as number, inclusive: true };
  return { value: exclusive, inclusive: false };
}

function escapePointer(name: string): string {
  return name.replaceAll('~', '~0').replaceAll('/', '~1');
}
