// OpenAI's nested error body ({error: {message, type, param, code}}) and HTTP status per failure.
import { RouterError, type RouterErrorCode } from '../errors.ts';

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface RenderedError {
  status: number;
  body: OpenAiErrorBody;
  /** Seconds for the Retry-After header, or null. */
  retryAfterS: number | null;
}

const statusByCode: Record<RouterErrorCode, { status: number; type: string }> = {
  invalid_request: { status: 400, type: 'invalid_request_error' },
  model_not_found: { status: 404, type: 'invalid_request_error' },
  context_length_exceeded: { status: 400, type: 'invalid_request_error' },
  unsupported: { status: 400, type: 'invalid_request_error' },
  queue_full: { status: 429, type: 'rate_limit_error' },
  no_workers: { status: 503, type: 'service_unavailable_error' },
  worker_failed: { status: 502, type: 'server_error' },
  deadline_exceeded: { status: 504, type: 'timeout_error' },
  not_found: { status: 404, type: 'invalid_request_error' },
  internal: { status: 500, type: 'server_error' },
};

/** Retry-After for 503s: workers may (re)appear within a heartbeat. */
const noWorkersRetryAfterS = 1;

export function renderError(error: unknown): RenderedError {
  if (error instanceof RouterError) {
    const { status, type } = statusByCode[error.code];
    let retryAfterS: number | null = null;
    if ('retryAfterS' in error && typeof error.retryAfterS === 'number') retryAfterS = error.retryAfterS;
    else if (error.code === 'no_workers') retryAfterS = noWorkersRetryAfterS;
    const code = error.code === 'queue_full' ? 'rate_limit_exceeded' : error.code;
    return {
      status,
      body: { error: { message: error.message, type, param: error.param, code } },
      retryAfterS,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    status: 500,
    body: {
      error: { message: `internal error: ${message}`, type: 'server_error', param: null, code: 'internal' },
    },
    retryAfterS: null,
  };
}
