// A constraint spec as the Generate call carries it (proto OutputConstraint): JSON Schemas as
// JSON text, the field it came from as `param` (a worker's refusal names fields under it).
import type { MessageInitShape, OutputConstraintSchema } from '@tandem/proto';
import type { ConstraintSpec } from '@tandem/structured';

export function constraintToWire(spec: ConstraintSpec): MessageInitShape<typeof OutputConstraintSchema> {
  const param = spec.param ?? '';
  switch (spec.type) {
    case 'json_schema':
      return { param, kind: { case: 'jsonSchema', value: JSON.stringify(spec.schema) } };
    case 'json_object':
      return { param, kind: { case: 'jsonObject', value: {} } };
    case 'regex':
      return { param, kind: { case: 'regex', value: spec.pattern } };
    case 'choice':
      return { param, kind: { case: 'choice', value: { choices: [...spec.choices] } } };
    case 'grammar': {
      const schemas: Record<string, string> = {};
      for (const [name, schema] of Object.entries(spec.schemas ?? {})) schemas[name] = JSON.stringify(schema);
      return {
        param,
        kind: {
          case: 'grammar',
          value: { grammar: spec.grammar, schemas, schemaParams: { ...(spec.schemaParams ?? {}) } },
        },
      };
    }
  }
}
