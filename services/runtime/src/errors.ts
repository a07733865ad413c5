// Typed failures of the runtime, as TandemErrors (reasons in @tandem/common's error-reasons.ts),
// so a worker returns them over gRPC with their meaning intact.
import {
  AlreadyExistsError,
  InvalidArgumentError,
  ResourceExhaustedError,
  TandemError,
  UnavailableError,
} from '@tandem/common';

/** A request's parameters are out of range (n < 1, maxTokens < 0, empty prompt...). */
export class InvalidGenerateRequestError extends InvalidArgumentError {
  constructor(message: string, param: string | null = null) {
    super(message, { param, reason: 'invalid_generate_request' });
  }
}

/** Engine or scheduler options out of range. */
export class InvalidSchedulerOptionsError extends InvalidArgumentError {
  constructor(message: string) {
    super(message, { reason: 'invalid_scheduler_options' });
  }
}

/** The page allocator was asked for more pages than are free (callers check canAllocate first). */
export class OutOfPagesError extends ResourceExhaustedError {
  constructor(numRequested: number, numFree: number) {
    super(`asked for ${numRequested} KV pages, ${numFree} free`, { reason: 'out_of_pages' });
  }
}

/** A sequence can never fit: it needs more pages than the whole pool, or more than maxModelLen. */
export class RequestTooLongError extends InvalidArgumentError {
  constructor(message: string) {
    super(message, { param: 'prompt_token_ids', reason: 'context_length_exceeded' });
  }
}

/** Two live requests with the same requestId. */
export class DuplicateRequestError extends AlreadyExistsError {
  constructor(requestId: string) {
    super(`request ${requestId} is already running`, { param: 'request_id', reason: 'duplicate_request' });
  }
}

/** The engine was closed before or while the request ran. */
export class EngineClosedError extends UnavailableError {
  constructor() {
    super('the engine is closed', { reason: 'engine_closed' });
  }
}

/**
 * executor.forward rejected; every request in that step fails with this. It keeps the executor
 * error's reason (an out-of-memory stays `out_of_memory`), the executor error being its cause.
 */
export class ExecutorFailedError extends TandemError {
  constructor(cause: unknown) {
    super(
      cause instanceof TandemError ? cause.reason : 'executor_internal',
      `executor forward failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}
