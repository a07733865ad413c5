// One error class per failure the bench can report; `code` is a closed set.

export type BenchErrorCode =
  | 'bad_config'
  | 'bad_result_file'
  | 'http_error'
  | 'stream_error'
  | 'warmup_failed'
  | 'server_error';

export class BenchConfigError extends Error {
  override readonly name = 'BenchConfigError';
  readonly code: BenchErrorCode = 'bad_config';
}

export class BenchResultFileError extends Error {
  override readonly name = 'BenchResultFileError';
  readonly code: BenchErrorCode = 'bad_result_file';
}

/** The endpoint answered with a non-2xx status. */
export class BenchHttpError extends Error {
  override readonly name = 'BenchHttpError';
  readonly code: BenchErrorCode = 'http_error';
  readonly status: number;
  constructor(status: number, body: string) {
    super(`HTTP ${status}: ${body.slice(0, 500)}`);
    this.status = status;
  }
}

/** The stream broke, carried an error event, or could not be parsed. */
export class BenchStreamError extends Error {
  override readonly name = 'BenchStreamError';
  readonly code: BenchErrorCode = 'stream_error';
}

/** Every warm-up request failed: the endpoint is not serving, so the run is not started. */
export class BenchWarmupError extends Error {
  override readonly name = 'BenchWarmupError';
  readonly code: BenchErrorCode = 'warmup_failed';
}

export class TestServerError extends Error {
  override readonly name = 'TestServerError';
  readonly code: BenchErrorCode = 'server_error';
}
