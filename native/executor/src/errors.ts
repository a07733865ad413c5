// Named error classes for every native failure, as TandemErrors (reasons in @tandem/common's
// error-reasons.ts). The addon rejects with an Error whose `code` is one of those reasons;
// fromNative() maps it to its class, keeping the native error as `cause`.
import {
  type ErrorReason,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  TandemError,
  type TandemErrorOptions,
  UnavailableError,
} from '@tandem/common';

/** The reasons the executor reports. */
export type ExecutorErrorReason = Extract<
  ErrorReason,
  | 'model_config_invalid'
  | 'checkpoint_invalid'
  | 'invalid_batch'
  | 'device_failed'
  | 'out_of_memory'
  | 'executor_closed'
  | 'addon_missing'
  | 'executor_internal'
>;

/** Whether a failure is one of the executor's (by its reason). */
export function isExecutorError(error: unknown): error is TandemError & { reason: ExecutorErrorReason } {
  return error instanceof TandemError && (executorReasons as readonly string[]).includes(error.reason);
}

const executorReasons: readonly ExecutorErrorReason[] = [
  'model_config_invalid',
  'checkpoint_invalid',
  'invalid_batch',
  'device_failed',
  'out_of_memory',
  'executor_closed',
  'addon_missing',
  'executor_internal',
];

/** config.json missing, malformed or unsupported (names the key). */
export class ModelConfigError extends FailedPreconditionError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'model_config_invalid' });
  }
}

/** safetensors missing, truncated, or a tensor missing / of the wrong shape (names it). */
export class CheckpointError extends FailedPreconditionError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'checkpoint_invalid' });
  }
}

/** A forward batch that cannot be computed; nothing was computed or written. */
export class InvalidBatchError extends InvalidArgumentError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'invalid_batch' });
  }
}

/** The device failed or does not exist (CUDA error text, file and line). */
export class DeviceError extends UnavailableError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'device_failed' });
  }
}

/** Not enough host or device memory for the weights, the KV pool or a step's buffers. */
export class OutOfMemoryError extends UnavailableError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'out_of_memory' });
  }
}

/** A call on an executor after close(). */
export class ExecutorClosedError extends UnavailableError {
  constructor(message = 'the executor is closed', options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'executor_closed' });
  }
}

/** The native addon is not built or cannot load (says which file and how to build it). */
export class AddonMissingError extends FailedPreconditionError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'addon_missing' });
  }
}

/** Anything the native side did not classify (a bug). */
export class InternalExecutorError extends InternalError {
  constructor(message: string, options: TandemErrorOptions = {}) {
    super(message, { ...options, reason: 'executor_internal' });
  }
}

const classByReason: Record<
  ExecutorErrorReason,
  new (
    message: string,
    options?: TandemErrorOptions,
  ) => TandemError
> = {
  model_config_invalid: ModelConfigError,
  checkpoint_invalid: CheckpointError,
  invalid_batch: InvalidBatchError,
  device_failed: DeviceError,
  out_of_memory: OutOfMemoryError,
  executor_closed: ExecutorClosedError,
  addon_missing: AddonMissingError,
  executor_internal: InternalExecutorError,
};

/** Maps a rejection from the addon (an Error whose `code` is a reason above) to its class. */
export function fromNative(err: unknown): TandemError {
  if (isExecutorError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  const Class = classByReason[code as ExecutorErrorReason] ?? InternalExecutorError;
  return new Class(message, { cause: err });
}
