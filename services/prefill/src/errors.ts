// Failures of a prefill worker. Each is a TandemError, so its reason crosses gRPC to the decode
// worker, which then falls back to a local prefill or another prefill worker.
import { CancelledError, TimeoutError, UnavailableError } from '@tandem/common';

/** The decode worker cancelled the prefill, or its lease ran out. */
export class PrefillCancelledError extends CancelledError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, reason: 'prefill_cancelled' });
  }
}

/** The prefill did not finish (compute plus transfer) within its lease. */
export class PrefillLeaseExpiredError extends TimeoutError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, reason: 'prefill_lease_expired' });
  }
}

/** The KV could not be written into the decode worker's pages (it died, refused, or stalled). */
export class KvDestinationError extends UnavailableError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, reason: 'prefill_destination_failed' });
  }
}

/** The engine ended the prefill without a first token (aborted, closed, or failed). */
export class PrefillNotCompletedError extends UnavailableError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, reason: 'prefill_not_completed' });
  }
}
