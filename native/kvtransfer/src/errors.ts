// One class per transfer failure, as TandemErrors (reasons in @tandem/common's error-reasons.ts).
// The native side rejects with an Error whose `code` is one of those reasons; fromNative() turns
// it into the class of that reason.
import {
  CancelledError,
  type ErrorReason,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  TandemError,
  type TandemErrorOptions,
  TimeoutError,
  UnavailableError,
} from '@tandem/common';

/** The reasons kvtransfer reports. */
export type KvTransferReason = Extract<ErrorReason, `kv_${string}`>;

/** Whether a failure is a transfer failure (by its reason). */
export function isKvTransferError(error: unknown): error is TandemError & { reason: KvTransferReason } {
  return error instanceof TandemError && error.reason.startsWith('kv_') && error.reason in byReason;
}

type Options = TandemErrorOptions;

export class KvConnectError extends UnavailableError {
  constructor(message: string, options: Options = {}) {
    super(message, { ...options, reason: 'kv_connect_failed' });
  }
}
/** The two sides disagree on model, layers, KV heads, head dim, dtype or page size. */
export class KvHandshakeMismatchError extends FailedPreconditionError {
  constructor(message: string, options: Options = {}) {
    super(message, { ...options, reason: 'kv_handshake_mismatch' });
  }
}
export class KvProtocolError extends InternalError {
  constructor(message: string, options: Options = {}) {
    super(message, { ...options, reason: 'kv_protocol' });
  }
}
export class KvTransferTimeoutError extends TimeoutError {
  constructor(message: string, options: Options = {}) {
    super(message, { ...options, reason: 'kv_timeout' });
  }
}
export class KvPeerClosedError extends UnavailableError {
  constructor(message: string, options: Options = {}) {
    super(message, { ...options, reason: 'kv_peer_closed' });
  }
}
export class KvOutOfBoundsError extends InvalidArgumentError {
  constructor(message: string, options: Options = {}) {
    super(message, { ...options, reason: 'kv_out_of_bounds' });
  }
}
export class KvTransferAbortedError extends CancelledError {
  constructor(message: string, options: Options = {}) {
    super(message, { ...options, reason: 'kv_aborted' });
  }
}
export class KvTransferClosedError extends UnavailableError {
  constructor(message: string, options: Options = {}) {
    super(message, { ...options, reason: 'kv_closed' });
  }
}
export class KvCommitMismatchError extends InternalError {
  constructor(message: string, options: Options = {}) {
    super(message, { ...options, reason: 'kv_commit_mismatch' });
  }
}
export class KvIoError extends UnavailableError {
  constructor(message: string, options: Options = {}) {
    super(message, { ...options, reason: 'kv_io' });
  }
}
export class KvAddonMissingError extends FailedPreconditionError {
  constructor(message: string, options: Options = {}) {
    super(message, { ...options, reason: 'kv_addon_missing' });
  }
}
/** A CUDA, NCCL or verbs call failed; the message names the call and the library's own words. */
export class KvDeviceError extends InternalError {
  constructor(message: string, options: Options = {}) {
    super(message, { ...options, reason: 'kv_device' });
  }
}
/** The transport asked for (`transport` option) cannot join these two pools; the message says why. */
export class KvTransportUnavailableError extends FailedPreconditionError {
  constructor(message: string, options: Options = {}) {
    super(message, { ...options, reason: 'kv_transport_unavailable' });
  }
}

const byReason: Record<KvTransferReason, new (message: string, options?: Options) => TandemError> = {
  kv_connect_failed: KvConnectError,
  kv_handshake_mismatch: KvHandshakeMismatchError,
  kv_protocol: KvProtocolError,
  kv_timeout: KvTransferTimeoutError,
  kv_peer_closed: KvPeerClosedError,
  kv_out_of_bounds: KvOutOfBoundsError,
  kv_aborted: KvTransferAbortedError,
  kv_closed: KvTransferClosedError,
  kv_commit_mismatch: KvCommitMismatchError,
  kv_io: KvIoError,
  kv_addon_missing: KvAddonMissingError,
  kv_device: KvDeviceError,
  kv_transport_unavailable: KvTransportUnavailableError,
};

/** Maps a native failure (code + message) to its class; the native error is the cause. */
export function fromNative(error: unknown): TandemError {
  if (isKvTransferError(error)) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return fromCode(typeof code === 'string' ? code : 'kv_io', message, { cause: error });
}

/** Builds the class for a reason reported by the native side (a receiver event, a rejection). */
export function fromCode(code: string, message: string, options: Options = {}): TandemError {
  const Class = byReason[code as KvTransferReason] ?? KvIoError;
  return new Class(message, options);
}
