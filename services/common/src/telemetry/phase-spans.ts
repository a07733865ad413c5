// A request's phases on one worker as consecutive child spans of the span active when it started
// (the gRPC server span): queue -> prefill -> decode on a decode worker, queue -> compute -> commit
// on a prefill worker. Each phase ends where the next begins. Inert while tracing is off.
import type { Attributes } from '@opentelemetry/api';
import {
  type Context,
  context,
  contextWithSpan,
  endSpan,
  type Span,
  startSpan,
  tracingEnabled,
} from './tracing.ts';

export class PhaseSpans {
  readonly #parent: Context | null;
  #current: Span | null = null;

  constructor(firstPhase: string, attributes?: Attributes) {
    this.#parent = tracingEnabled() ? context.active() : null;
    this.next(firstPhase, attributes);
  }

  /** Ends the current phase and starts `phase`. */
  next(phase: string, attributes?: Attributes): void {
    if (this.#parent === null) return;
    if (this.#current !== null) endSpan(this.#current);
    this.#current = startSpan(phase, {
      parent: this.#parent,
      ...(attributes === undefined ? {} : { attributes }),
    });
  }

  /** Attributes on the current phase. */
  annotate(attributes: Attributes): void {
    this.#current?.setAttributes(attributes);
  }

  /** The context with the current phase as parent (for work done on the request's behalf). */
  get context(): Context {
    return this.#current === null
      ? context.active()
      : contextWithSpan(this.#current, this.#parent ?? undefined);
  }

  /** Ends the current phase (failed when `error` is not null). */
  end(error: unknown = null): void {
    if (this.#current !== null) endSpan(this.#current, error);
    this.#current = null;
  }
}
