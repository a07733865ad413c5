// Router failures, as @tandem/common TandemErrors (the closed code set that maps to HTTP status and
// OpenAI error type). Each class adds the OpenAI `code` string the client sees.
import {
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  type TandemErrorOptions,
  UnavailableError,
} from '@tandem/common';

/** A request field has a bad type or value. */
export class InvalidRequestError extends InvalidArgumentError {
  readonly openAiCode: string = 'invalid_value';
  constructor(message: string, param: string | null, options: TandemErrorOptions = {}) {
    super(message, { ...options, param });
  }
}

/** A valid OpenAI feature tandem does not implement (tools, echo with logprobs...). */
export class UnsupportedError extends InvalidRequestError {
  override readonly openAiCode = 'unsupported_parameter';
}

/** Prompt plus requested tokens do not fit the model's context. */
export class ContextLengthError extends InvalidRequestError {
  override readonly openAiCode = 'context_length_exceeded';
}

/** The request names a model this router does not serve. */
export class ModelNotFoundError extends NotFoundError {
  readonly openAiCode = 'model_not_found';
  constructor(message: string, param: string | null) {
    super(message, { param });
  }
}

/** An unknown route or routing record. */
export class RouteNotFoundError extends NotFoundError {
  readonly openAiCode = 'not_found';
}

/** The admission queue is full; the client should retry later. */
export class QueueFullError extends ResourceExhaustedError {
  readonly openAiCode = 'rate_limit_exceeded';
}

/** No healthy worker can take the request. */
export class NoWorkersError extends UnavailableError {
  readonly openAiCode = 'no_workers';
}

/** The router's HTTP port is taken by another process (EADDRINUSE). */
export class PortInUseError extends FailedPreconditionError {
  readonly openAiCode = 'port_in_use';
}

/** The worker failed or broke off the request (after any retries). */
export class WorkerFailedError extends InternalError {
  readonly openAiCode = 'worker_failed';
}
