// The planner's vocabulary: the two pools it scales, what it reads each tick, and what it
// decides. Absent measurements are null (no traffic yet, Prometheus has no series).

export type PoolName = 'prefill' | 'decode';
export const poolNames: readonly PoolName[] = ['prefill', 'decode'];

/** One tick's view of the cluster (PrometheusSignals in a cluster, the simulator in bench/). */
export interface ClusterSignals {
  /** Router time to first token, p90 over the window, seconds. */
  ttftP90S: number | null;
  /** Router inter-token latency, p90 over the window, seconds. */
  itlP90S: number | null;
  /** Router admission wait, p90 over the window, seconds. */
  queueP90S: number | null;
  /** Prompt tokens routed minus those served from a prefix cache, per second (prefill demand). */
  prefillTokensPerS: number | null;
  /** Completion tokens streamed per second (decode demand). */
  decodeTokensPerS: number | null;
  /** Prompt tokens waiting on (or in) prefill workers, summed over the pool, averaged over the window. */
  queuedPrefillTokens: number | null;
  /** Decode workers' KV occupancy (0..1): summed over the pool, and the fullest one. */
  kvUsageSum: number | null;
  kvUsageMax: number | null;
  /** Requests waiting for a decode slot or KV pages, summed over the decode pool. */
  decodeRequestsWaiting: number | null;
  /** Requests decoding, summed over the decode pool. */
  decodeRequestsRunning: number | null;
}

export function emptySignals(): ClusterSignals {
  return {
    ttftP90S: null,
    itlP90S: null,
    queueP90S: null,
    prefillTokensPerS: null,
    decodeTokensPerS: null,
    queuedPrefillTokens: null,
    kvUsageSum: null,
    kvUsageMax: null,
    decodeRequestsWaiting: null,
    decodeRequestsRunning: null,
  };
}

/** Where signals come from: Prometheus in a cluster, the simulated cluster in bench/planner. */
export interface SignalSource {
  read(): Promise<ClusterSignals>;
  /** Requests running or waiting on each worker of the pool, by worker id (= pod name). */
  workerLoads(pool: PoolName): Promise<Map<string, number>>;
}

/** A pool's replica counts as the scaler sees them. */
export interface PoolState {
  /** spec.replicas of the workload (what was last asked for). */
  desired: number;
  /** Pods that exist and are not terminating (starting or ready). */
  current: number;
  /** Of those, the ready ones (model loaded, registered). */
  ready: number;
  /** Pods still draining after a scale-down (deletionTimestamp set, not gone yet). */
  terminating: number;
}

/** What the planner writes to: the Scale subresource in a cluster, the simulator in bench/. */
export interface Scaler {
  read(pool: PoolName): Promise<PoolState>;
  /** Sets the pool's replica count; going down, the least-loaded pods go first (drain). */
  scale(pool: PoolName, replicas: number, victims: readonly string[]): Promise<void>;
}

export type Direction = 'up' | 'down' | 'hold';

/** Why a pool's count was chosen: a closed set, the `reason` label of the decision metric. */
export type DecisionReason =
  // up
  | 'ttft_slo' // TTFT p90 above the up threshold, prefill the bottleneck
  | 'prefill_load' // prefill demand (rate + backlog) needs more replicas
  | 'itl_slo' // ITL p90 above the up threshold
  | 'decode_load' // decode token rate needs more replicas
  | 'kv_load' // decode KV in use (and wanted by waiting requests) over the target occupancy
  | 'kv_usage' // a decode worker's KV nearly full: a step
  | 'decode_waiting' // requests wait for decode slots (TTFT suffers on the decode side)
  | 'admission_queue' // the router queues requests: the busier pool grows
  | 'ratio' // raised to keep P:D inside its bounds
  | 'floor' // raised to the pool's minimum
  // down
  | 'idle' // load and latency well under target for the stabilization window
  | 'ceiling' // lowered to the pool's (or the cluster's) maximum
  // hold
  | 'steady'
  | 'cooldown'
  | 'stabilizing'
  | 'draining'
  | 'no_signal';

export interface PoolDecision {
  pool: PoolName;
  from: number;
  to: number;
  direction: Direction;
  reason: DecisionReason;
  /** The numbers that decided it, for the log line. */
  detail: Record<string, number | null>;
}
