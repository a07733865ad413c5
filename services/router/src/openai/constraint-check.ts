// The gateway's half of constrained decoding: a request's constraint is checked here, before
// admission, so a bad schema, regex or grammar is a 400 naming the field (the compiler's
// `param`), not a worker failure. Checking builds the automaton (no token masks) on a worker
// thread (@tandem/structured's CompilerThread), so a large schema never holds the event loop.
// Tool calls that tool_choice requires become a grammar (tools/formats.ts), checked the same way.
import type { Logger } from '@tandem/common';
import { CompilerThread, type ConstraintSpec } from '@tandem/structured';
import { UnsupportedError } from '../errors.ts';
import { type ToolCallFormat, toolCallConstraint } from '../tools/formats.ts';
import type { ToolsRequest } from '../tools/tool-request.ts';

export class ConstraintChecker {
  readonly #modelName: string;
  readonly #thread: Promise<CompilerThread | Error>;

  private constructor(modelName: string, thread: Promise<CompilerThread | Error>) {
    this.#modelName = modelName;
    this.#thread = thread;
  }

  /** Starts the checker's thread on the checkpoint's tokenizer in the background. */
  static start(modelDir: string, modelName: string, logger: Logger): ConstraintChecker {
    const thread = CompilerThread.start(modelDir, { restore: false }).catch((error: unknown) => {
      logger.warn('constrained decoding is unavailable for this model', { model: modelName, error });
      return error instanceof Error ? error : new Error(String(error));
    });
    return new ConstraintChecker(modelName, thread);
  }

  /** Resolves when the spec compiles; rejects with the compiler's 400 (param under the field). */
  async check(spec: ConstraintSpec): Promise<void> {
    const thread = await this.#thread;
    if (thread instanceof Error) {
      throw new UnsupportedError(
        `constrained decoding is unavailable for model '${this.#modelName}': ${thread.message}`,
        spec.param ?? null,
      );
    }
    await thread.check(spec);
  }

  /**
   * The constraint that makes the output the tool calls `tools.choice` requires (required: one
   * or, with parallel_tool_calls, several calls of any tool; a named function: one call of it),
   * checked. A non-strict tool whose schema the decoder cannot enforce gets any JSON object as
   * its arguments (OpenAI enforces only strict schemas); a strict one is a 400.
   */
  async forToolCalls(format: ToolCallFormat, tools: ToolsRequest): Promise<ConstraintSpec> {
    const choice = tools.choice;
    const chosen = tools.tools
      .map((tool, index) => ({ tool, index }))
      .filter(({ tool }) => choice.type !== 'function' || tool.name === choice.name);
    const parallel = choice.type === 'required' && tools.parallel;
    const loose = new Map<number, unknown>();
    for (;;) {
      const spec = toolCallConstraint(format, chosen, parallel, loose);
      try {
        await this.check(spec);
        return spec;
      } catch (error) {
        const param = (error as { param?: unknown }).param;
        const culprit = chosen.find(
          ({ tool, index }) =>
            !tool.strict &&
            !loose.has(index) &&
            typeof param === 'string' &&
            param.startsWith(`tools.${index}.function.parameters`),
        );
        if (culprit === undefined) throw error;
        loose.set(culprit.index, { type: 'object' });
      }
    }
  }

  async close(): Promise<void> {
    const thread = await this.#thread;
    if (!(thread instanceof Error)) await thread.close();
  }
}
