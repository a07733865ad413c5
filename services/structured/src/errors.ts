// One class per way a constraint can be refused. Each is an InvalidArgumentError whose `param`
// is the request field at fault (e.g. `response_format.json_schema.schema.properties.age.minimum`),
// so the router answers with an OpenAI 400 naming that field.
import { ConfigError, InvalidArgumentError } from '@tandem/common';

/** A JSON Schema that is malformed (wrong type for a keyword, min above max, dangling $ref). */
export class InvalidSchemaError extends InvalidArgumentError {
  constructor(message: string, param: string) {
    super(message, { param, reason: 'invalid_json_schema' });
  }
}

/** A keyword or keyword value this library does not generate for (refused, never ignored). */
export class UnsupportedSchemaError extends InvalidArgumentError {
  constructor(message: string, param: string) {
    super(message, { param, reason: 'unsupported_json_schema' });
  }
}

/** A regular expression that does not parse, or uses a feature outside the supported subset. */
export class InvalidRegexError extends InvalidArgumentError {
  /** Offset in the pattern where parsing stopped. */
  readonly position: number;

  constructor(message: string, param: string, position: number) {
    super(`${message} at offset ${position}`, { param, reason: 'invalid_regex' });
    this.position = position;
  }
}

/** An EBNF grammar that does not parse, names an undefined rule, or is left-recursive. */
export class InvalidGrammarError extends InvalidArgumentError {
  constructor(message: string, param: string) {
    super(message, { param, reason: 'invalid_grammar' });
  }
}

/** A constraint that no output can satisfy (with this model's vocabulary). */
export class UnsatisfiableConstraintError extends InvalidArgumentError {
  constructor(message: string, param: string) {
    super(message, { param, reason: 'unsatisfiable_constraint' });
  }
}

/** A constraint whose automaton would exceed the state limit (e.g. huge bounded repeats). */
export class ConstraintTooLargeError extends InvalidArgumentError {
  constructor(message: string, param: string) {
    super(message, { param, reason: 'constraint_too_large' });
  }
}

/** tokenizer.json (or its config) is missing or of a kind this library cannot read. */
export class VocabularyError extends ConfigError {}

/** A `choice` list that is empty or holds something other than strings. */
export class InvalidChoiceError extends InvalidArgumentError {
  constructor(message: string, param: string) {
    super(message, { param, reason: 'invalid_choice' });
  }
}
