// Typed failures of the runtime. One class per failure; `code` is a closed set that the worker
// service maps to gRPC status codes (and the router to OpenAI error types).

export type RuntimeErrorCode =
  | 'invalid_request'
  | 'invalid_options'
  | 'out_of_pages'
  | 'request_too_long'
  | 'duplicate_request'
  | 'engine_closed'
  | 'executor_failed'
  | 'tokenizer_load_failed'
  | 'chat_template_failed';

export class RuntimeError extends Error {
  readonly code: RuntimeErrorCode;
  constructor(code: RuntimeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RuntimeError';
    this.code = code;
  }
}

/** A request's parameters are out of range (n < 1, maxTokens < 0, empty prompt...). */
export class InvalidRequestError extends RuntimeError {
  constructor(message: string) {
    super('invalid_request', message);
    this.name = 'InvalidRequestError';
  }
}

/** Engine or scheduler options out of range. */
export class InvalidOptionsError extends RuntimeError {
  constructor(message: string) {
    super('invalid_options', message);
    this.name = 'InvalidOptionsError';
  }
}

/** The page allocator was asked for more pages than are free (callers check canAllocate first). */
export class OutOfPagesError extends RuntimeError {
  constructor(numRequested: number, numFree: number) {
    super('out_of_pages', `asked for ${numRequested} KV pages, ${numFree} free`);
    this.name = 'OutOfPagesError';
  }
}

/** A sequence can never fit: it needs more pages than the whole pool, or more than maxModelLen. */
export class RequestTooLongError extends RuntimeError {
  constructor(message: string) {
    super('request_too_long', message);
    this.name = 'RequestTooLongError';
  }
}

/** Two live requests with the same requestId. */
export class DuplicateRequestError extends RuntimeError {
  constructor(requestId: string) {
    super('duplicate_request', `request ${requestId} is already running`);
    this.name = 'DuplicateRequestError';
  }
}

/** The engine was closed before or while the request ran. */
export class EngineClosedError extends RuntimeError {
  constructor() {
    super('engine_closed', 'the engine is closed');
    this.name = 'EngineClosedError';
  }
}

/** executor.forward rejected; every request in that step fails with this as the cause. */
export class ExecutorFailedError extends RuntimeError {
  constructor(cause: unknown) {
    super(
      'executor_failed',
      `executor forward failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
      },
    );
    this.name = 'ExecutorFailedError';
  }
}

/** tokenizer.json / tokenizer_config.json missing or unreadable. */
export class TokenizerLoadError extends RuntimeError {
  constructor(message: string, cause?: unknown) {
    super('tokenizer_load_failed', message, { cause });
    this.name = 'TokenizerLoadError';
  }
}

/** The chat template is missing or failed to render these messages. */
export class ChatTemplateError extends RuntimeError {
  constructor(message: string, cause?: unknown) {
    super('chat_template_failed', message, { cause });
    this.name = 'ChatTemplateError';
  }
}
