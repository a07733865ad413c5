// One class per transfer failure. The native side rejects with an Error carrying `code`;
// fromNative() turns it into the class of that code.

export type KvTransferErrorCode =
  | 'connect_failed'
  | 'handshake_mismatch'
  | 'protocol'
  | 'timeout'
  | 'peer_closed'
  | 'out_of_bounds'
  | 'aborted'
  | 'closed'
  | 'commit_mismatch'
  | 'io'
  | 'addon_missing';

export abstract class KvTransferError extends Error {
  abstract readonly code: KvTransferErrorCode;
}

export class KvConnectError extends KvTransferError {
  override readonly name = 'KvConnectError';
  readonly code = 'connect_failed';
}
/** The two sides disagree on model, layers, KV heads, head dim, dtype or page size. */
export class KvHandshakeMismatchError extends KvTransferError {
  override readonly name = 'KvHandshakeMismatchError';
  readonly code = 'handshake_mismatch';
}
export class KvProtocolError extends KvTransferError {
  override readonly name = 'KvProtocolError';
  readonly code = 'protocol';
}
export class KvTransferTimeoutError extends KvTransferError {
  override readonly name = 'KvTransferTimeoutError';
  readonly code = 'timeout';
}
export class KvPeerClosedError extends KvTransferError {
  override readonly name = 'KvPeerClosedError';
  readonly code = 'peer_closed';
}
export class KvOutOfBoundsError extends KvTransferError {
  override readonly name = 'KvOutOfBoundsError';
  readonly code = 'out_of_bounds';
}
export class KvTransferAbortedError extends KvTransferError {
  override readonly name = 'KvTransferAbortedError';
  readonly code = 'aborted';
}
export class KvTransferClosedError extends KvTransferError {
  override readonly name = 'KvTransferClosedError';
  readonly code = 'closed';
}
export class KvCommitMismatchError extends KvTransferError {
  override readonly name = 'KvCommitMismatchError';
  readonly code = 'commit_mismatch';
}
export class KvIoError extends KvTransferError {
  override readonly name = 'KvIoError';
  readonly code = 'io';
}
export class KvAddonMissingError extends KvTransferError {
  override readonly name = 'KvAddonMissingError';
  readonly code = 'addon_missing';
}

const byCode: Record<string, new (message: string, options?: ErrorOptions) => KvTransferError> = {
  connect_failed: KvConnectError,
  handshake_mismatch: KvHandshakeMismatchError,
  protocol: KvProtocolError,
  timeout: KvTransferTimeoutError,
  peer_closed: KvPeerClosedError,
  out_of_bounds: KvOutOfBoundsError,
  aborted: KvTransferAbortedError,
  closed: KvTransferClosedError,
  commit_mismatch: KvCommitMismatchError,
  io: KvIoError,
};

/** Maps a native failure (code + message) to its class; the native error is the cause. */
export function fromNative(error: unknown): KvTransferError {
  if (error instanceof KvTransferError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const Class = (typeof code === 'string' ? byCode[code] : undefined) ?? KvIoError;
  return new Class(message, { cause: error });
}

/** Builds the class for a code reported in a receiver event. */
export function fromCode(code: string, message: string): KvTransferError {
  const Class = byCode[code] ?? KvIoError;
  return new Class(message);
}
