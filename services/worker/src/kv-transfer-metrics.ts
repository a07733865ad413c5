// The KV-transfer series both roles export, one definition: a prefill worker counts what it sends,
// a decode worker what it receives, each labelled {direction, transport} (transport: the
// kvtransfer transport in use, tcp today).
import type { Counter, Gauge, Histogram, MetricsRegistry } from '@tandem/common';

export interface KvTransferMetrics {
  readonly labels: { direction: 'send' | 'receive'; transport: string };
  readonly bytes: Counter;
  readonly failures: Counter;
  /** One transfer, first page to commit (send), or announce to commit (receive). */
  readonly seconds: Histogram;
  readonly inFlight: Gauge;
}

const transferBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function registerKvTransferMetrics(
  registry: MetricsRegistry,
  direction: 'send' | 'receive',
  transport = 'tcp',
): KvTransferMetrics {
  return {
    labels: { direction, transport },
    bytes: registry.counter('tandem_kv_transfer_bytes_total', 'KV bytes moved between workers'),
    failures: registry.counter('tandem_kv_transfer_failures_total', 'KV transfers that failed'),
    seconds: registry.histogram('tandem_kv_transfer_seconds', 'Duration of one KV transfer', transferBuckets),
    inFlight: registry.gauge('tandem_kv_transfers_in_flight', 'KV transfers in progress'),
  };
}
