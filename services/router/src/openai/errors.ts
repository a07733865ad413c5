// OpenAI's nested error body ({error: {message, type, param, code}}), its HTTP status and the
// Retry-After seconds, for any thrown value.
import { ResourceExhaustedError, TandemError, toTandemError, UnavailableError } from '@tandem/common';

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface RenderedError {
  status: number;
  body: OpenAiErrorBody;
  /** Seconds for the Retry-After header, or null. */
  retryAfterS: number | null;
}

/** 503s: workers may (re)appear within a heartbeat. */
const unavailableRetryAfterS = 1;

export function renderError(error: unknown): RenderedError {
  const tandemError: TandemError = error instanceof TandemError ? error : toTandemError(error);
  let retryAfterS: number | null = null;
  if (tandemError instanceof ResourceExhaustedError) {
    retryAfterS = Math.max(1, Math.ceil((tandemError.retryAfterMs ?? 1000) / 1000));
  } else if (tandemError instanceof UnavailableError) {
    retryAfterS = unavailableRetryAfterS;
  }
  // OpenAI reports an unknown model as an invalid request (status 404).
  const type = tandemError.reason === 'model_not_found' ? 'invalid_request_error' : tandemError.openAiType;
  return {
    status: tandemError.httpStatus,
    body: {
      error: {
        message: tandemError.message,
        type,
        param: tandemError.param,
        code: tandemError.reason,
      },
    },
    retryAfterS,
  };
}
