// The KV-transfer series both roles export, one definition: a prefill worker counts what it sends,
// a decode worker what it receives, each labelled {direction, transport} (transport: the
// kvtransfer transport in use, tcp today). Every series exists (at 0) from the start, so a rate
// over them is 0, not absent, before the first transfer or failure.
import type {
  BoundCounter,
  BoundGauge,
  BoundHistogram,
  Counter,
  Gauge,
  MetricsRegistry,
} from '@tandem/common';

export interface KvTransferMetrics {
  readonly labels: { direction: 'send' | 'receive'; transport: string };
  /** Bytes moved: counted by the sender; a receiver reads its own count (bytesMetric.track). */
  readonly bytes: BoundCounter;
  readonly failures: BoundCounter;
  /** One transfer: first page to commit (send), or the Prefill call with its transfer (receive). */
  readonly seconds: BoundHistogram;
  readonly inFlight: BoundGauge;
  readonly bytesMetric: Counter;
  readonly inFlightMetric: Gauge;
}

const transferBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function registerKvTransferMetrics(
  registry: MetricsRegistry,
  direction: 'send' | 'receive',
  transport = 'tcp',
): KvTransferMetrics {
  const labels = { direction, transport };
  const bytesMetric = registry.counter('tandem_kv_transfer_bytes_total', 'KV bytes moved between workers');
  const inFlightMetric = registry.gauge('tandem_kv_transfers_in_flight', 'KV transfers in progress');
  const counted = direction === 'send';
  return {
    labels,
    bytesMetric,
    inFlightMetric,
    bytes: counted ? bytesMetric.with(labels) : { inc: () => {} },
    inFlight: counted ? inFlightMetric.with(labels) : { set: () => {}, inc: () => {} },
    failures: registry.counter('tandem_kv_transfer_failures_total', 'KV transfers that failed').with(labels),
    seconds: registry
      .histogram('tandem_kv_transfer_seconds', 'Duration of one KV transfer', transferBuckets)
      .with(labels),
  };
}
