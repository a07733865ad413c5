// OpenAI's nested error body ({error: {message, type, param, code}}), its HTTP status and the
// Retry-After seconds, for any thrown value.
import {
  type ErrorCode,
  type ErrorReason,
  ResourceExhaustedError,
  TandemError,
  toTandemError,
  UnavailableError,
} from '@tandem/common';

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

/**
 * A server-side failure's message comes from a worker, a socket or a library and may name
 * internal addresses (issue 18, defect 7): the client gets the class's public message instead
 * (the logs keep the detail). The router's own 5xx reasons say nothing internal and stay.
 */
const publicMessages: Partial<Record<ErrorCode, string>> = {
  internal: 'The server had an error while processing your request.',
  unavailable: 'The server cannot serve the request right now; retry shortly.',
  deadline_exceeded: 'The request timed out.',
  unimplemented: 'The server cannot serve this request.',
};
const ownMessageReasons: ReadonlySet<ErrorReason> = new Set(['no_workers', 'queue_timeout']);

function publicMessage(error: TandemError): string {
  if (error.httpStatus < 500 || ownMessageReasons.has(error.reason)) return error.message;
  return publicMessages[error.code] ?? 'The server had an error while processing your request.';
}

export function renderError(error: unknown): RenderedError {
  const tandemError: TandemError = error instanceof TandemError ? error : toTandemError(error);
  let retryAfterS: number | null = null;
  if (tandemError instanceof ResourceExhaustedError) {
    retryAfterS = Math.max(1, Math.ceil((tandemError.retryAfterMs ?? 1000) / 1000));
  } else if (tandemError instanceof UnavailableError) {
    retryAfterS = unavailableRetryAfterS;
  }
  // OpenAI reports an unknown model (404) and a bad API key (401) as invalid requests.
  const type =
    tandemError.reason === 'model_not_found' || tandemError.reason === 'invalid_api_key'
      ? 'invalid_request_error'
      : tandemError.openAiType;
  return {
    status: tandemError.httpStatus,
    body: {
      error: {
        message: publicMessage(tandemError),
        type,
        param: tandemError.param,
        code: tandemError.reason,
      },
    },
    retryAfterS,
  };
}
