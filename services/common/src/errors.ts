// The one error model: every failure in every package is a TandemError whose `reason` comes from
// the closed table in error-reasons.ts and whose `code` (the status class) follows from it. The
// code decides the gRPC status a worker returns and the HTTP status and OpenAI error type the
// router returns; the reason is OpenAI's `code` field. A failure keeps its meaning across hops.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { type ErrorCode, type ErrorReason, errorReasons, type ReasonOf } from './error-reasons.ts';

export type { ErrorCode, ErrorReason, ReasonOf } from './error-reasons.ts';
export { errorReasons, isErrorReason } from './error-reasons.ts';

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

/** Options of a status-class error: a more specific reason of that class may be given. */
export type ClassErrorOptions<C extends ErrorCode> = TandemErrorOptions & { reason?: ReasonOf<C> };

/** The base of every tandem error. `code` follows from `reason`; `name` is the class name. */
export class TandemError extends Error {
  readonly code: ErrorCode;
  readonly reason: ErrorReason;
  readonly param: string | null;

  constructor(reason: ErrorReason, message: string, options: TandemErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.reason = reason;
    this.code = errorReasons[reason];
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
  constructor(message: string, options: ClassErrorOptions<'invalid_argument'> = {}) {
    super(options.reason ?? 'invalid_argument', message, options);
  }
}

/** Configuration (flags, environment) is missing or malformed. */
export class ConfigError extends InvalidArgumentError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'bad_config' });
  }
}

/** A named thing (model, request id, worker) does not exist. */
export class NotFoundError extends TandemError {
  constructor(message: string, options: ClassErrorOptions<'not_found'> = {}) {
    super(options.reason ?? 'not_found', message, options);
  }
}

/** The operation is valid but not in this state (e.g. a worker that drains). */
export class FailedPreconditionError extends TandemError {
  constructor(message: string, options: ClassErrorOptions<'failed_precondition'> = {}) {
    super(options.reason ?? 'failed_precondition', message, options);
  }
}

/** Out of capacity (queue full, rate limit); retry after `retryAfterMs` when known. */
export class ResourceExhaustedError extends TandemError {
  readonly retryAfterMs: number | null;

  constructor(
    message: string,
    options: ClassErrorOptions<'resource_exhausted'> & { retryAfterMs?: number | null } = {},
  ) {
    super(options.reason ?? 'resource_exhausted', message, options);
    this.retryAfterMs = options.retryAfterMs ?? null;
  }
}

/** A dependency (worker, NATS, Redis) cannot be reached. */
export class UnavailableError extends TandemError {
  constructor(message: string, options: ClassErrorOptions<'unavailable'> = {}) {
    super(options.reason ?? 'unavailable', message, options);
  }
}

/** A required program or package is not installed; the message says what to install. */
export class DependencyMissingError extends FailedPreconditionError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'dependency_missing' });
  }
}

/** Something did not happen in time. */
export class TimeoutError extends TandemError {
  constructor(message: string, options: ClassErrorOptions<'deadline_exceeded'> = {}) {
    super(options.reason ?? 'deadline_exceeded', message, options);
  }
}

/** The caller cancelled (client disconnect, abort signal). */
export class CancelledError extends TandemError {
  constructor(message: string, options: ClassErrorOptions<'cancelled'> = {}) {
    super(options.reason ?? 'cancelled', message, options);
  }
}

/** The feature exists in the protocol but not in this build or role. */
export class UnimplementedError extends TandemError {
  constructor(message: string, options: ClassErrorOptions<'unimplemented'> = {}) {
    super(options.reason ?? 'unimplemented', message, options);
  }
}

/** An id (request id) is already in use. */
export class AlreadyExistsError extends TandemError {
  constructor(message: string, options: ClassErrorOptions<'already_exists'> = {}) {
    super(options.reason ?? 'already_exists', message, options);
  }
}

/** Missing or wrong credentials (API key). */
export class UnauthenticatedError extends TandemError {
  constructor(message: string, options: ClassErrorOptions<'unauthenticated'> = {}) {
    super(options.reason ?? 'unauthenticated', message, options);
  }
}

/** Authenticated but not allowed. */
export class PermissionDeniedError extends TandemError {
  constructor(message: string, options: ClassErrorOptions<'permission_denied'> = {}) {
    super(options.reason ?? 'permission_denied', message, options);
  }
}

/** A bug or an unexpected failure. */
export class InternalError extends TandemError {
  constructor(message: string, options: ClassErrorOptions<'internal'> = {}) {
    super(options.reason ?? 'internal', message, options);
  }
}

/** A child process exited (or failed to spawn) when it should have kept running. */
export class ProcessExitedError extends TandemError {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;

  constructor(command: string, exitCode: number | null, signal: NodeJS.Signals | null, output: string) {
    const how = signal !== null ? `signal ${signal}` : `code ${exitCode ?? 'unknown'}`;
    super('process_exited', `${command} exited (${how})${output.length > 0 ? `: ${output.trim()}` : ''}`);
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

/** The class of each status code (errors from the wire are rebuilt as these). */
const errorClasses: {
  [C in ErrorCode]: new (
    message: string,
    options?: ClassErrorOptions<C>,
  ) => TandemError;
} = {
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

/**
 * The TandemError a failure that crossed the wire stands for: the class of its status code, with
 * the reason the sender gave (or the bare class reason when the sender named none we know).
 */
export function errorFromWire(
  code: ErrorCode,
  reason: ErrorReason | null,
  message: string,
  options: TandemErrorOptions = {},
): TandemError {
  const known = reason !== null && errorReasons[reason] === code ? reason : code;
  // `known` is a reason of `code` (checked above), which the mapped type cannot see.
  const Class = errorClasses[code] as new (
    message: string,
    options: TandemErrorOptions & { reason: ErrorReason },
  ) => TandemError;
  return new Class(message, { ...options, reason: known });
}
