// ClusterSignals from Prometheus' HTTP API (GET /api/v1/query, instant queries), over the
// metric names the router and the workers export. One query per signal, all in parallel.
import { UnavailableError } from '@tandem/common';
import type { ClusterSignals, PoolName, SignalSource } from './types.ts';

export interface PrometheusSignalsOptions {
  /** Base URL of Prometheus, e.g. http://prometheus-operated.monitoring:9090 */
  url: string;
  /** Range of rate() and of the histogram quantiles, e.g. '1m'. */
  window: string;
  /** Served model name to filter the worker gauges by, or null for all. */
  model: string | null;
  /** Extra label matchers on every series (e.g. `namespace="llm"`), or ''. */
  selector: string;
  timeoutMs: number;
}

/** One instant-vector sample: its labels and value. */
export interface PromSample {
  labels: Record<string, string>;
  value: number;
}

interface PromResponse {
  status: 'success' | 'error';
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
  error?: string;
  errorType?: string;
}

/** The PromQL the planner runs, by signal (also shown in the chart's README). */
export function plannerQueries(options: Pick<PrometheusSignalsOptions, 'window' | 'model' | 'selector'>) {
  const w = options.window;
  const extra = options.selector.trim();
  const router = extra === '' ? '' : `{${extra}}`;
  const worker = (role: PoolName): string => {
    const parts = [`role="${role}"`];
    if (options.model !== null) parts.push(`model="${options.model.replace(/["\\]/g, '\\$&')}"`);
    if (extra !== '') parts.push(extra);
    return `{${parts.join(',')}}`;
  };
  const p90 = (name: string): string =>
    `histogram_quantile(0.9, sum by (le) (rate(${name}_bucket${router}[${w}])))`;
  return {
    ttftP90S: p90('tandem_router_time_to_first_token_seconds'),
    itlP90S: p90('tandem_router_inter_token_latency_seconds'),
    queueP90S: p90('tandem_router_queue_seconds'),
    promptTokensPerS: `sum(rate(tandem_router_prompt_tokens_total${router}[${w}]))`,
    cachedTokensPerS: `sum(rate(tandem_router_cached_tokens_total${router}[${w}]))`,
    decodeTokensPerS: `sum(rate(tandem_router_completion_tokens_total${router}[${w}]))`,
    queuedPrefillTokens: `sum(avg_over_time(tandem_worker_queued_prefill_tokens${worker('prefill')}[${w}]))`,
    kvUsageSum: `sum(tandem_worker_kv_usage_ratio${worker('decode')})`,
    kvUsageMax: `max(tandem_worker_kv_usage_ratio${worker('decode')})`,
    decodeRequestsWaiting: `sum(tandem_worker_requests_waiting${worker('decode')})`,
    decodeRequestsRunning: `sum(tandem_worker_requests_running${worker('decode')})`,
    running: (pool: PoolName) => `sum by (worker) (tandem_worker_requests_running${worker(pool)})`,
    waiting: (pool: PoolName) => `sum by (worker) (tandem_worker_requests_waiting${worker(pool)})`,
  } as const;
}

export class PrometheusSignals implements SignalSource {
  readonly #options: PrometheusSignalsOptions;
  readonly #queries: ReturnType<typeof plannerQueries>;

  constructor(options: PrometheusSignalsOptions) {
    this.#options = options;
    this.#queries = plannerQueries(options);
  }

  async read(): Promise<ClusterSignals> {
    const q = this.#queries;
    const [ttft, itl, queue, prompt, cached, decode, queued, kvSum, kvMax, waiting, running] =
      await Promise.all([
        this.scalar(q.ttftP90S),
        this.scalar(q.itlP90S),
        this.scalar(q.queueP90S),
        this.scalar(q.promptTokensPerS),
        this.scalar(q.cachedTokensPerS),
        this.scalar(q.decodeTokensPerS),
        this.scalar(q.queuedPrefillTokens),
        this.scalar(q.kvUsageSum),
        this.scalar(q.kvUsageMax),
        this.scalar(q.decodeRequestsWaiting),
        this.scalar(q.decodeRequestsRunning),
      ]);
    return {
      ttftP90S: ttft,
      itlP90S: itl,
      queueP90S: queue,
      prefillTokensPerS: prompt === null ? null : Math.max(0, prompt - (cached ?? 0)),
      decodeTokensPerS: decode,
      queuedPrefillTokens: queued,
      kvUsageSum: kvSum,
      kvUsageMax: kvMax,
      decodeRequestsWaiting: waiting,
      decodeRequestsRunning: running,
    };
  }

  async workerLoads(pool: PoolName): Promise<Map<string, number>> {
    const [running, waiting] = await Promise.all([
      this.query(this.#queries.running(pool)),
      this.query(this.#queries.waiting(pool)),
    ]);
    const loads = new Map<string, number>();
    for (const sample of [...running, ...waiting]) {
      const worker = sample.labels.worker;
      if (worker !== undefined && Number.isFinite(sample.value)) {
        loads.set(worker, (loads.get(worker) ?? 0) + sample.value);
      }
    }
    return loads;
  }

  /** The first sample's value, or null when the result is empty or not a number (no traffic). */
  async scalar(promql: string): Promise<number | null> {
    const samples = await this.query(promql);
    const value = samples[0]?.value;
    return value === undefined || !Number.isFinite(value) ? null : value;
  }

  async query(promql: string): Promise<PromSample[]> {
    const url = new URL('/api/v1/query', this.#options.url);
    url.searchParams.set('query', promql);
    let response: Response;
    try {
      response = await fetch(url, { signal: AbortSignal.timeout(this.#options.timeoutMs) });
    } catch (cause) {
      throw new UnavailableError(`Prometheus at ${this.#options.url} unreachable`, { cause });
    }
    const body = (await response.json().catch(() => null)) as PromResponse | null;
    if (!response.ok || body === null || body.status !== 'success' || body.data === undefined) {
      const why = body?.error ?? `HTTP ${response.status}`;
      throw new UnavailableError(`Prometheus query failed (${why}): ${promql}`);
    }
    if (body.data.resultType !== 'vector') {
      throw new UnavailableError(`Prometheus returned a ${body.data.resultType}, not a vector: ${promql}`);
    }
    return body.data.result.map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
  }
}
