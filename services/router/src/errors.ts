// Router failures, as @tandem/common TandemErrors. Each reason (error-reasons.ts) is the OpenAI
// `code` string the client sees.
import {
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  type ReasonOf,
  ResourceExhaustedError,
  type TandemErrorOptions,
  TimeoutError,
  UnauthenticatedError,
  UnavailableError,
} from '@tandem/common';

/** A request field has a bad type or value. */
export class InvalidRequestError extends InvalidArgumentError {
  constructor(
    message: string,
    param: string | null,
    options: TandemErrorOptions & { reason?: ReasonOf<'invalid_argument'> } = {},
  ) {
    super(message, { ...options, param, reason: options.reason ?? 'invalid_value' });
  }
}

/** A valid OpenAI feature tandem does not implement (tools, echo with logprobs...). */
export class UnsupportedError extends InvalidRequestError {
  constructor(message: string, param: string | null, options: TandemErrorOptions = {}) {
    super(message, param, { ...options, reason: 'unsupported_parameter' });
  }
}

/** Prompt plus requested tokens do not fit the model's context. */
export class ContextLengthError extends InvalidRequestError {
  constructor(message: string, param: string | null, options: TandemErrorOptions = {}) {
    super(message, param, { ...options, reason: 'context_length_exceeded' });
  }
}

/** The request names a model this router does not serve. */
export class ModelNotFoundError extends NotFoundError {
  constructor(message: string, param: string | null) {
    super(message, { param, reason: 'model_not_found' });
  }
}

/** An unknown route or routing record. */
export class RouteNotFoundError extends NotFoundError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'route_not_found' });
  }
}

/** The admission queue is full; the client should retry later. */
export class QueueFullError extends ResourceExhaustedError {
  constructor(message: string, options: TandemErrorOptions & { retryAfterMs?: number | null } = {}) {
    super(message, { ...options, reason: 'rate_limit_exceeded' });
  }
}

/** A request waited in the admission queue past its deadline. */
export class QueueTimeoutError extends UnavailableError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'queue_timeout' });
  }
}

/** No healthy worker can take the request. */
export class NoWorkersError extends UnavailableError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'no_workers' });
  }
}

/** The router's HTTP port is taken by another process (EADDRINUSE). */
export class PortInUseError extends FailedPreconditionError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'port_in_use' });
  }
}

/** The worker failed or broke off the request (after any retries). */
export class WorkerFailedError extends InternalError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'worker_failed' });
  }
}

/** The router could not encode a request for the wire: its own failure, not a worker's. */
export class RequestNotEncodableError extends InternalError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'request_not_encodable' });
  }
}

/** No API key, or one the router does not know (OpenAI's 401 invalid_api_key). */
export class InvalidApiKeyError extends UnauthenticatedError {
  constructor(message: string) {
    super(message, { reason: 'invalid_api_key' });
  }
}

/** An attempt missed its first-byte deadline: the worker (or its prefill worker) stalled. */
export class FirstByteTimeoutError extends TimeoutError {
  constructor(message: string) {
    super(message, { reason: 'first_byte_timeout' });
  }
}
