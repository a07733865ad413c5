// The JSON Schema keywords we accept and readers for their values that fail with the field
// path of the offending keyword. Anything not listed here is refused, never ignored.
import { InvalidSchemaError, UnsupportedSchemaError } from './errors.ts';

export type SchemaObject = Record<string, unknown>;

/** Keywords that say nothing about which outputs are valid. */
export const annotationKeywords = new Set([
  'title',
  'description',
  'default',
  'examples',
  '$schema',
  '$id',
  '$comment',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$defs',
  'definitions',
]);

export const supportedKeywords = new Set([
  ...annotationKeywords,
  '$ref',
  'type',
  'enum',
  'const',
  'anyOf',
  'oneOf',
  'allOf',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
]);

export const typeNames = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'] as const;
export type TypeName = (typeof typeNames)[number];

/** Keywords that imply a type when `type` is absent. */
export const keywordTypes: Readonly<Record<string, TypeName>> = {
  properties: 'object',
  required: 'object',
  additionalProperties: 'object',
  items: 'array',
  prefixItems: 'array',
  minItems: 'array',
  maxItems: 'array',
  minLength: 'string',
  maxLength: 'string',
  pattern: 'string',
  format: 'string',
  minimum: 'number',
  maximum: 'number',
  exclusiveMinimum: 'number',
  exclusiveMaximum: 'number',
};

export function join(path: string, key: string | number): string {
  return typeof key === 'number' ? `${path}[${key}]` : `${path}.${key}`;
}

export function isSchemaObject(value: unknown): value is SchemaObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function checkKeywords(schema: SchemaObject, path: string): void {
  for (const key of Object.keys(schema)) {
    if (!supportedKeywords.has(key)) {
      throw new UnsupportedSchemaError(`JSON Schema keyword "${key}" is not supported`, join(path, key));
    }
  }
}

/** Refuses keywords other than annotations and `allowed` next to `keyword`. */
export function onlyAlongside(
  schema: SchemaObject,
  keyword: string,
  allowed: readonly string[],
  path: string,
): void {
  for (const key of Object.keys(schema)) {
    if (key !== keyword && !annotationKeywords.has(key) && !allowed.includes(key)) {
      throw new UnsupportedSchemaError(`"${key}" cannot be combined with "${keyword}"`, join(path, key));
    }
  }
}

export function readCount(schema: SchemaObject, key: string, path: string): number | null {
  const value = schema[key];
  if (value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new InvalidSchemaError(`"${key}" must be a non-negative integer`, join(path, key));
  }
  return value;
}

/** min/max counts, checked for min <= max. */
export function readCountRange(
  schema: SchemaObject,
  minKey: string,
  maxKey: string,
  path: string,
): [number, number | null] {
  const min = readCount(schema, minKey, path) ?? 0;
  const max = readCount(schema, maxKey, path);
  if (max !== null && max < min)
    throw new InvalidSchemaError(`"${maxKey}" is below "${minKey}"`, join(path, maxKey));
  return [min, max];
}

export function readNumber(schema: SchemaObject, key: string, path: string): number | null {
  const value = schema[key];
  if (value === undefined) return null;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidSchemaError(`"${key}" must be a finite number`, join(path, key));
  }
  return value;
}

export function readString(schema: SchemaObject, key: string, path: string): string | null {
  const value = schema[key];
  if (value === undefined) return null;
  if (typeof value !== 'string') throw new InvalidSchemaError(`"${key}" must be a string`, join(path, key));
  return value;
}

export function readSchemaArray(schema: SchemaObject, key: string, path: string): unknown[] | null {
  const value = schema[key];
  if (value === undefined) return null;
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidSchemaError(`"${key}" must be a non-empty array of schemas`, join(path, key));
  }
  return value;
}

export function readTypes(schema: SchemaObject, path: string): TypeName[] | null {
  const value = schema.type;
  if (value === undefined) return null;
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) throw new InvalidSchemaError('"type" must not be empty', join(path, 'type'));
  list.forEach((name, i) => {
    if (typeof name !== 'string' || !(typeNames as readonly string[]).includes(name)) {
      const at = Array.isArray(value) ? join(join(path, 'type'), i) : join(path, 'type');
      throw new InvalidSchemaError(`"type" must be one of ${typeNames.join(', ')}`, at);
    }
  });
  return [...new Set(list as TypeName[])];
}

/** The JSON type of a value (an enum or const member). */
export function typeOfValue(value: unknown): TypeName[] {
  if (value === null) return ['null'];
  if (Array.isArray(value)) return ['array'];
  if (typeof value === 'boolean') return ['boolean'];
  if (typeof value === 'string') return ['string'];
  if (typeof value === 'number') return Number.isInteger(value) ? ['integer', 'number'] : ['number'];
  return ['object'];
}
