// Output constraints on a worker: the wire message -> a @tandem/structured spec -> a compiled
// grammar the runtime's matchers run on (TokenConstraint). Compiling happens on a worker thread
// (CompilerThread), started with the process, so a compile of seconds never holds the decode
// loop: a constrained request is admitted only once its grammar is ready, while the batch keeps
// running. Grammars are cached per spec on both sides of the thread.
import { InvalidArgumentError, type Logger, UnimplementedError } from '@tandem/common';
import type { OutputConstraint as WireOutputConstraint } from '@tandem/proto';
import type { TokenConstraint } from '@tandem/runtime';
import { CompilerThread, type ConstraintSpec } from '@tandem/structured';

export class OutputConstraints {
  readonly #thread: Promise<CompilerThread | Error>;

  private constructor(thread: Promise<CompilerThread | Error>) {
    this.#thread = thread;
  }

  /**
   * Starts the compiler thread on the checkpoint's tokenizer, with masks of the model's
   * vocabulary size (config.json's vocab_size, which may exceed the tokenizer's ids). Returns at
   * once; the first compile waits for the thread. A tokenizer the compiler cannot read leaves
   * constrained requests refused (logged once).
   */
  static start(modelDir: string, vocabSize: number, logger: Logger): OutputConstraints {
    const thread = CompilerThread.start(modelDir, { vocabulary: { vocabSize } }).catch((error: unknown) => {
      logger.warn('constrained decoding is unavailable: the grammar compiler did not start', { error });
      return error instanceof Error ? error : new Error(String(error));
    });
    return new OutputConstraints(thread);
  }

  /** The compiled constraint (InvalidArgumentError naming the field when it cannot compile). */
  async compile(wire: WireOutputConstraint): Promise<TokenConstraint> {
    const spec = specFromWire(wire);
    const thread = await this.#thread;
    if (thread instanceof Error) {
      throw new UnimplementedError(`constrained decoding is unavailable for this model: ${thread.message}`, {
        param: spec.param ?? null,
        cause: thread,
      });
    }
    const grammar = await thread.compile(spec);
    const accepted = wire.acceptedTokenIds;
    if (accepted.length === 0) return grammar;
    // A continuation: each choice's matcher starts where the output was (checked once here).
    const newMatcher = () => {
      const matcher = grammar.newMatcher();
      for (const [i, tokenId] of accepted.entries()) {
        if (!matcher.acceptToken(tokenId)) {
          throw new InvalidArgumentError(`accepted token ${i} (${tokenId}) does not follow the constraint`, {
            param: 'constraint.accepted_token_ids',
          });
        }
      }
      return matcher;
    };
    newMatcher();
    return { maskWords: grammar.maskWords, newMatcher };
  }

  async close(): Promise<void> {
    const thread = await this.#thread;
    if (!(thread instanceof Error)) await thread.close();
  }
}

function parseJson(text: string, param: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new InvalidArgumentError(`${param} is not valid JSON`, { param, cause });
  }
}

/** The @tandem/structured spec of a wire constraint (JSON Schemas arrive as JSON text). */
export function specFromWire(wire: WireOutputConstraint): ConstraintSpec {
  const param = wire.param === '' ? undefined : wire.param;
  const withParam = <T extends object>(spec: T): T & { param?: string } =>
    param === undefined ? spec : { ...spec, param };
  const kind = wire.kind;
  switch (kind.case) {
    case 'jsonSchema':
      return withParam({
        type: 'json_schema',
        schema: parseJson(kind.value, param ?? 'constraint.json_schema'),
      });
    case 'jsonObject':
      return withParam({ type: 'json_object' });
    case 'regex':
      return withParam({ type: 'regex', pattern: kind.value });
    case 'choice':
      return withParam({ type: 'choice', choices: kind.value.choices });
    case 'grammar': {
      const names = Object.keys(kind.value.schemas);
      if (names.length === 0) return withParam({ type: 'grammar', grammar: kind.value.grammar });
      const schemas: Record<string, unknown> = {};
      for (const name of names) {
        const schemaParam = kind.value.schemaParams[name] ?? `constraint.grammar.schemas.${name}`;
        schemas[name] = parseJson(kind.value.schemas[name] ?? '', schemaParam);
      }
      return withParam({
        type: 'grammar',
        grammar: kind.value.grammar,
        schemas,
        schemaParams: { ...kind.value.schemaParams },
      });
    }
    default:
      throw new InvalidArgumentError('the constraint names no kind', { param: 'constraint' });
  }
}
