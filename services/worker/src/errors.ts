// The worker's own failures, and any failure as the TandemError that crosses the wire.
import { CancelledError, type TandemError, toTandemError, UnavailableError } from '@tandem/common';

/** Any failure as a TandemError (runtime, executor and transfer errors already are one). */
export function toServiceError(error: unknown): TandemError {
  if (error instanceof Error && error.name === 'AbortError')
    return new CancelledError(error.message, { cause: error });
  return toTandemError(error);
}

/** The worker is shutting down (SIGTERM) and takes no new requests. */
export class WorkerDrainingError extends UnavailableError {
  constructor(message: string) {
    super(message, { reason: 'worker_draining' });
  }
}
