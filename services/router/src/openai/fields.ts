// Typed readers for JSON request fields; each failure names the field (OpenAI's `param`).
import { InvalidRequestError } from '../errors.ts';

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function fail(param: string, message: string): never {
  throw new InvalidRequestError(message, param);
}

/** Absent and null both read as null (OpenAI clients send null for "default"). */
export function optional(body: JsonObject, key: string): unknown {
  const value = body[key];
  return value === undefined ? null : value;
}

export function readBoolean(body: JsonObject, key: string, fallback: boolean, param = key): boolean {
  const value = optional(body, key);
  if (value === null) return fallback;
  if (typeof value !== 'boolean') fail(param, `'${param}' must be a boolean, got ${typeName(value)}`);
  return value;
}

export interface NumberRange {
  min?: number;
  max?: number;
  /** Exclusive lower bound. */
  above?: number;
  integer?: boolean;
}

export function checkNumber(value: unknown, param: string, range: NumberRange): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    fail(param, `'${param}' must be a number, got ${typeName(value)}`);
  }
  if (range.integer === true && !Number.isInteger(value))
    fail(param, `'${param}' must be an integer, got ${value}`);
  if (range.min !== undefined && value < range.min)
    fail(param, `'${param}' must be >= ${range.min}, got ${value}`);
  if (range.max !== undefined && value > range.max)
    fail(param, `'${param}' must be <= ${range.max}, got ${value}`);
  if (range.above !== undefined && value <= range.above) {
    fail(param, `'${param}' must be > ${range.above}, got ${value}`);
  }
  return value;
}

export function readNumber(body: JsonObject, key: string, fallback: number, range: NumberRange): number {
  const value = optional(body, key);
  return value === null ? fallback : checkNumber(value, key, range);
}

export function readNullableNumber(body: JsonObject, key: string, range: NumberRange): number | null {
  const value = optional(body, key);
  return value === null ? null : checkNumber(value, key, range);
}

export function readString(body: JsonObject, key: string): string | null {
  const value = optional(body, key);
  if (value === null) return null;
  if (typeof value !== 'string') fail(key, `'${key}' must be a string, got ${typeName(value)}`);
  return value;
}

export function readStringOrList(body: JsonObject, key: string, maxItems: number): string[] {
  const value = optional(body, key);
  if (value === null) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list))
    fail(key, `'${key}' must be a string or a list of strings, got ${typeName(value)}`);
  if (list.length > maxItems) fail(key, `'${key}' takes at most ${maxItems} items, got ${list.length}`);
  return list.map((item, i) => {
    if (typeof item !== 'string') fail(`${key}.${i}`, `'${key}[${i}]' must be a string`);
    if (item.length === 0) fail(`${key}.${i}`, `'${key}[${i}]' must not be empty`);
    return item;
  });
}

/** A token id: an integer in [0, vocabSize). */
export function checkTokenId(value: unknown, param: string, vocabSize: number): number {
  const tokenId = checkNumber(value, param, { integer: true, min: 0 });
  if (tokenId >= vocabSize) {
    fail(param, `'${param}' (${tokenId}) is outside the vocabulary (size ${vocabSize})`);
  }
  return tokenId;
}

export function readTokenIdList(body: JsonObject, key: string, vocabSize: number): number[] {
  const value = optional(body, key);
  if (value === null) return [];
  if (!Array.isArray(value)) fail(key, `'${key}' must be a list of token ids, got ${typeName(value)}`);
  return value.map((item, i) => checkTokenId(item, `${key}.${i}`, vocabSize));
}

export { fail, typeName };
