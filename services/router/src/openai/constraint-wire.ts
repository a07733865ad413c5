// A constraint spec as the Generate call carries it (proto OutputConstraint): JSON Schemas as
// JSON text, the field it came from as `param` (a worker's refusal names fields under it).
import type { MessageInitShape, OutputConstraintSchema } from '@tandem/proto';
import type { ConstraintSpec } from '@tandem/structured';

/** `acceptedTokenIds`: output already generated under it (a continuation after a failover). */
export function constraintToWire(
  spec: ConstraintSpec,
  acceptedTokenIds: readonly number[] = [],
): MessageInitShape<typeof OutputConstraintSchema> {
  return { ...kindToWire(spec), param: spec.param ?? '', acceptedTokenIds: [...acceptedTokenIds] };
}

function kindToWire(spec: ConstraintSpec): Pick<MessageInitShape<typeof OutputConstraintSchema>, 'kind'> {
  switch (spec.type) {
    case 'json_schema':
      return { kind: { case: 'jsonSchema', value: JSON.stringify(spec.schema) } };
    case 'json_object':
      return { kind: { case: 'jsonObject', value: {} } };
    case 'regex':
      return { kind: { case: 'regex', value: spec.pattern } };
    case 'choice':
      return { kind: { case: 'choice', value: { choices: [...spec.choices] } } };
    case 'grammar': {
      const schemas: Record<string, string> = {};
      for (const [name, schema] of Object.entries(spec.schemas ?? {})) schemas[name] = JSON.stringify(schema);
      return {
        kind: {
          case: 'grammar',
          value: { grammar: spec.grammar, schemas, schemaParams: { ...(spec.schemaParams ?? {}) } },
        },
      };
    }
  }
}
