// The router's prefill decision for one Generate (GenerateRequest.prefill), read once at the
// worker's edge: a named prefill worker, a local prefill, or no decision (a direct gRPC client),
// in which case a decode worker chooses from the prefill workers it discovered.
import { InvalidArgumentError } from '@tandem/common';
import { type PrefillEndpoint, PrefillMode } from '@tandem/proto';

export type PrefillDecision =
  /** These prefill workers (gRPC host:port), in order; then the discovered ones; then local. */
  | { type: 'remote'; addresses: readonly string[] }
  /** Prefill here; ask no prefill worker. */
  | { type: 'local' }
  /** The decode worker decides (its directory and --disagg-threshold). */
  | { type: 'undecided' };

/** Reads the wire field; a REMOTE endpoint without an address is the caller's error. */
export function prefillDecisionFromWire(endpoint: PrefillEndpoint | undefined): PrefillDecision {
  if (endpoint === undefined) return { type: 'undecided' };
  switch (endpoint.mode) {
    case PrefillMode.LOCAL:
      return { type: 'local' };
    case PrefillMode.REMOTE:
      if (endpoint.address === '') {
        throw new InvalidArgumentError('prefill.mode is REMOTE but prefill.address is empty', {
          param: 'prefill.address',
        });
      }
      return { type: 'remote', addresses: [endpoint.address] };
    default:
      // UNSPECIFIED (or a mode from a newer router): an address still names the worker.
      return endpoint.address === ''
        ? { type: 'undecided' }
        : { type: 'remote', addresses: [endpoint.address] };
  }
}
