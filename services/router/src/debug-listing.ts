// GET /debug and GET /debug/targets: every process of the cluster (this router and each worker
// it knows) with its metrics endpoint, as JSON and as Prometheus HTTP service discovery.

/** Where each process of the cluster serves its metrics (GET /debug). */
export interface DebugListing {
  processes: {
    role: 'router' | 'unified' | 'prefill' | 'decode';
    id: string;
    grpcAddress: string | null;
    /** host:port serving GET /metrics, or null when it serves none. */
    metricsAddress: string | null;
  }[];
}

/** The listing as Prometheus's http_sd_configs reads it: one target group per process. */
export function prometheusTargets(
  listing: DebugListing,
): { targets: string[]; labels: Record<string, string> }[] {
  return listing.processes.flatMap((process) =>
    process.metricsAddress === null
      ? []
      : [
          {
            targets: [process.metricsAddress],
            labels: { tandem_process: process.role, tandem_id: process.id },
          },
        ],
  );
}
