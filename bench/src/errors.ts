// One error class per failure the bench can report, as TandemErrors (reasons in @tandem/common's
// error-reasons.ts).
import {
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  UnavailableError,
} from '@tandem/common';

export class BenchConfigError extends InvalidArgumentError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, reason: 'bench_config' });
  }
}

export class BenchResultFileError extends FailedPreconditionError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, reason: 'bench_result_file' });
  }
}

/** The endpoint answered with a non-2xx status. */
export class BenchHttpError extends UnavailableError {
  readonly status: number;
  constructor(status: number, body: string) {
    super(`HTTP ${status}: ${body.slice(0, 500)}`, { reason: 'bench_http' });
    this.status = status;
  }
}

/** The stream broke, carried an error event, or could not be parsed. */
export class BenchStreamError extends UnavailableError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, reason: 'bench_stream' });
  }
}

/** Every warm-up request failed: the endpoint is not serving, so the run is not started. */
export class BenchWarmupError extends UnavailableError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, reason: 'bench_warmup' });
  }
}

export class TestServerError extends InternalError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, reason: 'bench_test_server' });
  }
}
