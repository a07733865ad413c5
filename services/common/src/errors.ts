// One error class per failure, each with a code from a closed set. The code decides the gRPC
// status a worker returns and the HTTP status and OpenAI error type the router returns, so a
// failure keeps its meaning across every hop.
import { status as GrpcStatus } from '@grpc/grpc-js';

export type ErrorCode =
  | 'invalid_argument'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'resource_exhausted'
  | 'unavailable'
  | 'deadline_exceeded'
  | 'cancelled'
  | 'unauthenticated'
  | 'permission_denied'
  | 'unimplemented'
  | 'internal';

export type OpenAiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'timeout_error'
  | 'server_error'
  | 'service_unavailable_error';

export interface ErrorCodeMapping {
  grpcStatus: GrpcStatus;
  httpStatus: number;
  openAiType: OpenAiErrorType;
}

/** The mapping table (docs/protocol.md repeats it). */
export const errorCodeMappings: Readonly<Record<ErrorCode, ErrorCodeMapping>> = {
  invalid_argument: {
    grpcStatus: GrpcStatus.INVALID_ARGUMENT,
    httpStatus: 400,
    openAiType: 'invalid_request_error',
  },
  not_found: { grpcStatus: GrpcStatus.NOT_FOUND, httpStatus: 404, openAiType: 'not_found_error' },
  already_exists: {
    grpcStatus: GrpcStatus.ALREADY_EXISTS,
    httpStatus: 409,
    openAiType: 'invalid_request_error',
  },
  failed_precondition: {
    grpcStatus: GrpcStatus.FAILED_PRECONDITION,
    httpStatus: 400,
    openAiType: 'invalid_request_error',
  },
  resource_exhausted: {
    grpcStatus: GrpcStatus.RESOURCE_EXHAUSTED,
    httpStatus: 429,
    openAiType: 'rate_limit_error',
  },
  unavailable: {
    grpcStatus: GrpcStatus.UNAVAILABLE,
    httpStatus: 503,
    openAiType: 'service_unavailable_error',
  },
  deadline_exceeded: {
    grpcStatus: GrpcStatus.DEADLINE_EXCEEDED,
    httpStatus: 504,
    openAiType: 'timeout_error',
  },
  cancelled: { grpcStatus: GrpcStatus.CANCELLED, httpStatus: 499, openAiType: 'invalid_request_error' },
  unauthenticated: {
    grpcStatus: GrpcStatus.UNAUTHENTICATED,
    httpStatus: 401,
    openAiType: 'authentication_error',
  },
  permission_denied: {
    grpcStatus: GrpcStatus.PERMISSION_DENIED,
    httpStatus: 403,
    openAiType: 'permission_error',
  },
  unimplemented: {
    grpcStatus: GrpcStatus.UNIMPLEMENTED,
    httpStatus: 501,
    openAiType: 'invalid_request_error',
  },
  internal: { grpcStatus: GrpcStatus.INTERNAL, httpStatus: 500, openAiType: 'server_error' },
};

export const errorCodes = Object.keys(errorCodeMappings) as ErrorCode[];

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(errorCodeMappings, value);
}

export interface TandemErrorOptions {
  cause?: unknown;
  /** The request parameter at fault (OpenAI's `param`), or null. */
  param?: string | null;
}

/** The base of every tandem error. Subclasses fix `code`; `name` is the class name. */
export class TandemError extends Error {
  readonly code: ErrorCode;
  readonly param: string | null;

  constructor(code: ErrorCode, message: string, options: TandemErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.param = options.param ?? null;
  }

  get grpcStatus(): GrpcStatus {
    return errorCodeMappings[this.code].grpcStatus;
  }

  get httpStatus(): number {
    return errorCodeMappings[this.code].httpStatus;
  }

  get openAiType(): OpenAiErrorType {
    return errorCodeMappings[this.code].openAiType;
  }
}

/** A request field is out of range or malformed. */
export class InvalidArgumentError extends TandemError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super('invalid_argument', message, options);
  }
}

/** Configuration (flags, environment) is missing or malformed. */
export class ConfigError extends TandemError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super('invalid_argument', message, options);
  }
}

/** A named thing (model, request id, worker) does not exist. */
export class NotFoundError extends TandemError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super('not_found', message, options);
  }
}

/** The operation is valid but not in this state (e.g. a worker that drains). */
export class FailedPreconditionError extends TandemError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super('failed_precondition', message, options);
  }
}

/** Out of capacity (queue full, rate limit); retry after `retryAfterMs` when known. */
export class ResourceExhaustedError extends TandemError {
  readonly retryAfterMs: number | null;

  constructor(message: string, options: TandemErrorOptions & { retryAfterMs?: number | null } = {}) {
    super('resource_exhausted', message, options);
    this.retryAfterMs = options.retryAfterMs ?? null;
  }
}

/** A dependency (worker, NATS, Redis) cannot be reached. */
export class UnavailableError extends TandemError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super('unavailable', message, options);
  }
}

/** A required program or package is not installed; the message says what to install. */
export class DependencyMissingError extends TandemError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super('failed_precondition', message, options);
  }
}

/** Something did not happen in time. */
export class TimeoutError extends TandemError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super('deadline_exceeded', message, options);
  }
}

/** The caller cancelled (client disconnect, abort signal). */
export class CancelledError extends TandemError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super('cancelled', message, options);
  }
}

/** The feature exists in the protocol but not in this build or role. */
export class UnimplementedError extends TandemError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super('unimplemented', message, options);
  }
}

/** An id (request id) is already in use. */
export class AlreadyExistsError extends TandemError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super('already_exists', message, options);
  }
}

/** Missing or wrong credentials (API key). */
export class UnauthenticatedError extends TandemError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super('unauthenticated', message, options);
  }
}

/** Authenticated but not allowed. */
export class PermissionDeniedError extends TandemError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super('permission_denied', message, options);
  }
}

/** A bug or an unexpected failure. */
export class InternalError extends TandemError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super('internal', message, options);
  }
}

/** A child process exited (or failed to spawn) when it should have kept running. */
export class ProcessExitedError extends TandemError {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;

  constructor(command: string, exitCode: number | null, signal: NodeJS.Signals | null, output: string) {
    const how = signal !== null ? `signal ${signal}` : `code ${exitCode ?? 'unknown'}`;
    super('internal', `${command} exited (${how})${output.length > 0 ? `: ${output.trim()}` : ''}`);
    this.exitCode = exitCode;
    this.signal = signal;
  }
}

/** Any thrown value as a TandemError (unknown ones become InternalError, keeping the cause). */
export function toTandemError(error: unknown): TandemError {
  if (error instanceof TandemError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new InternalError(message, { cause: error });
}

const errorClasses: Record<ErrorCode, new (message: string, options?: TandemErrorOptions) => TandemError> = {
  invalid_argument: InvalidArgumentError,
  not_found: NotFoundError,
  already_exists: AlreadyExistsError,
  failed_precondition: FailedPreconditionError,
  resource_exhausted: ResourceExhaustedError,
  unavailable: UnavailableError,
  deadline_exceeded: TimeoutError,
  cancelled: CancelledError,
  unauthenticated: UnauthenticatedError,
  permission_denied: PermissionDeniedError,
  unimplemented: UnimplementedError,
  internal: InternalError,
};

/** A TandemError of the class that stands for `code` (used when an error crosses the wire). */
export function errorFromCode(
  code: ErrorCode,
  message: string,
  options: TandemErrorOptions = {},
): TandemError {
  return new errorClasses[code](message, options);
}
