// Router failures. Each class is one failure; `code` is from a closed set that maps to an HTTP
// status and an OpenAI error `type` (openai/errors.ts renders them).

export type RouterErrorCode =
  | 'invalid_request'
  | 'model_not_found'
  | 'context_length_exceeded'
  | 'unsupported'
  | 'queue_full'
  | 'no_workers'
  | 'worker_failed'
  | 'deadline_exceeded'
  | 'not_found'
  | 'internal';

export abstract class RouterError extends Error {
  abstract readonly code: RouterErrorCode;
  /** The request field at fault (OpenAI's `param`), or null. */
  readonly param: string | null;
  constructor(message: string, param: string | null = null, options?: { cause?: unknown }) {
    super(message, options);
    this.param = param;
  }
}

/** A request field has a bad type or value. */
export class InvalidRequestError extends RouterError {
  override readonly name = 'InvalidRequestError';
  readonly code = 'invalid_request' as const;
}

/** The request names a model this router does not serve. */
export class ModelNotFoundError extends RouterError {
  override readonly name = 'ModelNotFoundError';
  readonly code = 'model_not_found' as const;
}

/** Prompt plus requested tokens do not fit the model's context. */
export class ContextLengthError extends RouterError {
  override readonly name = 'ContextLengthError';
  readonly code = 'context_length_exceeded' as const;
}

/** A valid OpenAI feature tandem does not implement (tools, echo with logprobs...). */
export class UnsupportedError extends RouterError {
  override readonly name = 'UnsupportedError';
  readonly code = 'unsupported' as const;
}

/** The admission queue is full; the client should retry after `retryAfterS`. */
export class QueueFullError extends RouterError {
  override readonly name = 'QueueFullError';
  readonly code = 'queue_full' as const;
  readonly retryAfterS: number;
  constructor(message: string, retryAfterS: number) {
    super(message, null);
    this.retryAfterS = retryAfterS;
  }
}

/** No healthy worker can take the request. */
export class NoWorkersError extends RouterError {
  override readonly name = 'NoWorkersError';
  readonly code = 'no_workers' as const;
}

/** The worker failed the request (after any retries). */
export class WorkerFailedError extends RouterError {
  override readonly name = 'WorkerFailedError';
  readonly code = 'worker_failed' as const;
}

/** The request's deadline passed. */
export class DeadlineExceededError extends RouterError {
  override readonly name = 'DeadlineExceededError';
  readonly code = 'deadline_exceeded' as const;
}

/** An unknown route or record. */
export class NotFoundError extends RouterError {
  override readonly name = 'NotFoundError';
  readonly code = 'not_found' as const;
}

/** A bug or an unexpected failure. */
export class InternalError extends RouterError {
  override readonly name = 'InternalError';
  readonly code = 'internal' as const;
}
