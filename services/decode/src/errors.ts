// Runtime failures as the TandemError classes that cross the wire (and the worker's own failures).
import {
  AlreadyExistsError,
  CancelledError,
  InternalError,
  InvalidArgumentError,
  ResourceExhaustedError,
  TandemError,
  toTandemError,
  UnavailableError,
} from '@tandem/common';
import { RuntimeError } from '@tandem/runtime';

/** Maps a runtime error (by its closed code) to the service error class the caller sees. */
export function toServiceError(error: unknown): TandemError {
  if (error instanceof TandemError) return error;
  if (error instanceof RuntimeError) {
    const options = { cause: error };
    switch (error.code) {
      case 'invalid_request':
        return new InvalidArgumentError(error.message, options);
      case 'request_too_long':
        return new InvalidArgumentError(error.message, { ...options, param: 'prompt_token_ids' });
      case 'out_of_pages':
        return new ResourceExhaustedError(error.message, options);
      case 'duplicate_request':
        return new AlreadyExistsError(error.message, { ...options, param: 'request_id' });
      case 'engine_closed':
        return new UnavailableError(error.message, options);
      default:
        return new InternalError(error.message, options);
    }
  }
  if (error instanceof Error && error.name === 'AbortError')
    return new CancelledError(error.message, { cause: error });
  return toTandemError(error);
}

/** The worker is shutting down (SIGTERM) and takes no new requests. */
export class WorkerDrainingError extends UnavailableError {}

/** `--role prefill|decode` before disaggregation exists. */
export class RoleNotSupportedError extends InvalidArgumentError {}
