// Structured-output fields -> one constraint spec (@tandem/structured), or null. OpenAI's
// response_format (text, json_object, json_schema), vLLM's guided_json / guided_regex /
// guided_choice / guided_grammar and structured_outputs {json, regex, choice, grammar,
// json_object}, and SGLang's regex / ebnf. At most one of them per request. Only shapes are
// checked here; whether a schema, regex or grammar compiles (a 400 naming the field under it)
// is the compiler's check, run by the service off the event loop (constraint-check.ts).
import type { ConstraintSpec } from '@tandem/structured';
import { UnsupportedError } from '../errors.ts';
import { fail, isObject, type JsonObject, optional, typeName } from './fields.ts';

const schemaNamePattern = /^[A-Za-z0-9_-]{1,64}$/;

/** One source of a constraint: the field it came from and the spec. */
interface Found {
  param: string;
  spec: ConstraintSpec;
}

/** A JSON Schema given as an object, or as JSON text (vLLM accepts both). */
function readSchema(value: unknown, param: string): unknown {
  if (typeof value === 'string') {
    try {
      return JSON.parse(value);
    } catch {
      return fail(param, `'${param}' is not valid JSON`);
    }
  }
  if (typeof value !== 'object' || value === null)
    fail(param, `'${param}' must be a JSON Schema object, got ${typeName(value)}`);
  return value;
}

function readText(value: unknown, param: string): string {
  if (typeof value !== 'string') fail(param, `'${param}' must be a string, got ${typeName(value)}`);
  return value;
}

function readChoices(value: unknown, param: string): string[] {
  if (!Array.isArray(value) || value.length === 0)
    fail(param, `'${param}' must be a non-empty list of strings`);
  return value.map((item, i) => readText(item, `${param}.${i}`));
}

function fromResponseFormat(body: JsonObject): Found | null {
  const format = optional(body, 'response_format');
  if (format === null) return null;
  if (!isObject(format)) fail('response_format', "'response_format' must be an object");
  switch (format.type) {
    case 'text':
      return null;
    case 'json_object':
      return { param: 'response_format', spec: { type: 'json_object', param: 'response_format' } };
    case 'json_schema': {
      const jsonSchema = format.json_schema;
      if (!isObject(jsonSchema))
        fail('response_format.json_schema', "'response_format.json_schema' must be an object");
      if (typeof jsonSchema.name !== 'string' || !schemaNamePattern.test(jsonSchema.name)) {
        fail(
          'response_format.json_schema.name',
          "'response_format.json_schema.name' must be 1 to 64 letters, digits, '_' or '-'",
        );
      }
      if (
        jsonSchema.strict !== undefined &&
        jsonSchema.strict !== null &&
        typeof jsonSchema.strict !== 'boolean'
      )
        fail('response_format.json_schema.strict', "'response_format.json_schema.strict' must be a boolean");
      const param = 'response_format.json_schema.schema';
      // No schema: any JSON value (a strict schema is always enforced; a non-strict one too).
      const schema = jsonSchema.schema === undefined || jsonSchema.schema === null ? {} : jsonSchema.schema;
      if (!isObject(schema)) fail(param, `'${param}' must be an object`);
      return { param: 'response_format', spec: { type: 'json_schema', schema, param } };
    }
    default:
      throw new UnsupportedError(
        `response_format type '${String(format.type)}' is not supported (text, json_object, json_schema)`,
        'response_format.type',
      );
  }
}

/** The vLLM / SGLang fields: name -> how its value becomes a spec. */
const extraFields: [string, (value: unknown, param: string) => ConstraintSpec][] = [
  ['guided_json', (v, param) => ({ type: 'json_schema', schema: readSchema(v, param), param })],
  ['guided_regex', (v, param) => ({ type: 'regex', pattern: readText(v, param), param })],
  ['guided_choice', (v, param) => ({ type: 'choice', choices: readChoices(v, param), param })],
  ['guided_grammar', (v, param) => ({ type: 'grammar', grammar: readText(v, param), param })],
  ['regex', (v, param) => ({ type: 'regex', pattern: readText(v, param), param })],
  ['ebnf', (v, param) => ({ type: 'grammar', grammar: readText(v, param), param })],
];

const structuredOutputsFields: [string, (value: unknown, param: string) => ConstraintSpec | null][] = [
  ['json', (v, param) => ({ type: 'json_schema', schema: readSchema(v, param), param })],
  ['regex', (v, param) => ({ type: 'regex', pattern: readText(v, param), param })],
  ['choice', (v, param) => ({ type: 'choice', choices: readChoices(v, param), param })],
  ['grammar', (v, param) => ({ type: 'grammar', grammar: readText(v, param), param })],
  [
    'json_object',
    (v, param) => {
      if (typeof v !== 'boolean') fail(param, `'${param}' must be a boolean`);
      return v ? { type: 'json_object', param } : null;
    },
  ],
];

function fromStructuredOutputs(body: JsonObject): Found[] {
  const value = optional(body, 'structured_outputs');
  if (value === null) return [];
  if (!isObject(value)) fail('structured_outputs', "'structured_outputs' must be an object");
  const found: Found[] = [];
  for (const [key, read] of structuredOutputsFields) {
    const field = value[key];
    if (field === undefined || field === null) continue;
    const param = `structured_outputs.${key}`;
    const spec = read(field, param);
    if (spec !== null) found.push({ param, spec });
  }
  return found;
}

/** The request's output constraint, or null; a 400 naming the field when two are given. */
export function readOutputConstraint(body: JsonObject): ConstraintSpec | null {
  const found: Found[] = [];
  const format = fromResponseFormat(body);
  if (format !== null) found.push(format);
  for (const [key, read] of extraFields) {
    const value = optional(body, key);
    if (value !== null) found.push({ param: key, spec: read(value, key) });
  }
  found.push(...fromStructuredOutputs(body));
  if (found.length > 1) {
    const [first, second] = found as [Found, Found];
    fail(
      second.param,
      `'${second.param}' cannot be combined with '${first.param}': give one output constraint`,
    );
  }
  return found[0]?.spec ?? null;
}
