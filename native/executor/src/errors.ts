// Named error classes for every native failure. The addon rejects with an Error carrying `code`;
// fromNative() maps it to one of these, keeping the native error as `cause`.

export type ExecutorErrorCode =
  | 'CONFIG'
  | 'CHECKPOINT'
  | 'INVALID_INPUT'
  | 'DEVICE'
  | 'OUT_OF_MEMORY'
  | 'CLOSED'
  | 'ADDON_MISSING'
  | 'INTERNAL';

export class ExecutorError extends Error {
  readonly code: ExecutorErrorCode;
  constructor(code: ExecutorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExecutorError';
    this.code = code;
  }
}

/** config.json missing, malformed or unsupported (names the key). */
export class ConfigError extends ExecutorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG', message, options);
    this.name = 'ConfigError';
  }
}

/** safetensors missing, truncated, or a tensor missing / of the wrong shape (names it). */
export class CheckpointError extends ExecutorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CHECKPOINT', message, options);
    this.name = 'CheckpointError';
  }
}

/** A forward batch that cannot be computed; nothing was computed or written. */
export class InvalidInputError extends ExecutorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_INPUT', message, options);
    this.name = 'InvalidInputError';
  }
}

/** The device failed or does not exist (CUDA error text, file and line). */
export class DeviceError extends ExecutorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEVICE', message, options);
    this.name = 'DeviceError';
  }
}

/** Not enough host or device memory for the weights or the KV pool. */
export class OutOfMemoryError extends ExecutorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('OUT_OF_MEMORY', message, options);
    this.name = 'OutOfMemoryError';
  }
}

/** A call on an executor after close(). */
export class ExecutorClosedError extends ExecutorError {
  constructor(message = 'the executor is closed', options?: { cause?: unknown }) {
    super('CLOSED', message, options);
    this.name = 'ExecutorClosedError';
  }
}

/** The native addon is not built or cannot load (says which file and how to build it). */
export class AddonMissingError extends ExecutorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ADDON_MISSING', message, options);
    this.name = 'AddonMissingError';
  }
}

/** Anything the native side did not classify (a bug). */
export class InternalExecutorError extends ExecutorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INTERNAL', message, options);
    this.name = 'InternalExecutorError';
  }
}

/** Maps a rejection from the addon to a named error class. */
export function fromNative(err: unknown): ExecutorError {
  if (err instanceof ExecutorError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'INTERNAL';
  const options = { cause: err };
  switch (code) {
    case 'CONFIG':
      return new ConfigError(message, options);
    case 'CHECKPOINT':
      return new CheckpointError(message, options);
    case 'INVALID_INPUT':
      return new InvalidInputError(message, options);
    case 'DEVICE':
      return new DeviceError(message, options);
    case 'OUT_OF_MEMORY':
      return new OutOfMemoryError(message, options);
    case 'CLOSED':
      return new ExecutorClosedError(message, options);
    default:
      return new InternalExecutorError(message, options);
  }
}
