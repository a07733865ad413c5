// The router's Prometheus series (GET /metrics on its HTTP port), on common's registry: every
// series carries {model} (the served model). Hot paths hold bound instruments, so recording is a
// few additions. vLLM's latency names are aliases of the matching histograms
// (docs/observability.md has the table).
import {
  type BoundCounter,
  type BoundHistogram,
  type Counter,
  type Gauge,
  MetricsRegistry,
  registerProcessMetrics,
  secondsBuckets,
  tokenBuckets,
} from '@tandem/common';

export class RouterMetrics {
  readonly registry: MetricsRegistry;
  /** {route, status, code}: code is the error reason ('' on success). */
  readonly requests: Counter;
  /** {policy, worker} */
  readonly decisions: Counter;
  /** {type, worker} */
  readonly prefillDecisions: Counter;
  /** Prompts retried on another worker after one failed before the first token. {worker} */
  readonly retries: Counter;
  /** Silent attempts given a twin on another worker (the worker named is the twin). {worker} */
  readonly hedges: Counter;
  /** Workers that failed mid-stream (their choices continued elsewhere). {worker} */
  readonly failovers: Counter;
  /** Errors sent inside an open stream (the response had status 200). {code} */
  readonly streamErrors: Counter;
  /** Requests refused by admission (429, queue full). */
  readonly rejected: BoundCounter;
  readonly promptTokens: BoundCounter;
  readonly cachedTokens: BoundCounter;
  readonly completionTokens: BoundCounter;
  readonly ttft: BoundHistogram;
  readonly itl: BoundHistogram;
  readonly tpot: BoundHistogram;
  readonly e2e: BoundHistogram;
  readonly queue: BoundHistogram;
  readonly decisionTime: BoundHistogram;
  readonly inputTokens: BoundHistogram;
  readonly outputTokens: BoundHistogram;
  readonly #stopProcessMetrics: () => void;
  readonly #boundDecisions = new Map<string, BoundCounter>();

  /** options.process: this router's index in a --processes group (its series say which). */
  constructor(modelName: string, options: { enabled?: boolean; process?: number | null } = {}) {
    const process = options.process ?? null;
    const registry = new MetricsRegistry({
      constLabels:
        process === null ? { model: modelName } : { model: modelName, router_process: String(process) },
      enabled: options.enabled ?? true,
    });
    this.registry = registry;
    this.requests = registry.counter(
      'tandem_router_requests_total',
      'HTTP requests by route, status and error code (the reason, empty on success)',
    );
    this.decisions = registry.counter(
      'tandem_router_routing_decisions_total',
      'Routing decisions by policy and chosen worker',
    );
    this.prefillDecisions = registry.counter(
      'tandem_router_prefill_decisions_total',
      'Decode-worker prompts by prefill decision (remote on a prefill worker, local, undecided)',
    );
    this.retries = registry.counter(
      'tandem_router_retries_total',
      'Prompts retried on another worker (the first failed before its first token), by the worker that failed',
    );
    this.hedges = registry.counter(
      'tandem_router_hedges_total',
      'Silent attempts given a twin on another worker (the worker named is the twin)',
    );
    this.failovers = registry.counter(
      'tandem_router_failovers_total',
      'Workers that failed mid-stream (their choices continued elsewhere)',
    );
    this.streamErrors = registry.counter(
      'tandem_router_stream_errors_total',
      'Errors sent inside an open stream (the response had status 200), by error code',
    );
    this.rejected = registry
      .counter(
        'tandem_router_admission_rejected_total',
        'Requests refused because the admission queue was full (429)',
      )
      .with({});
    this.promptTokens = registry
      .counter('tandem_router_prompt_tokens_total', 'Prompt tokens routed')
      .with({});
    this.cachedTokens = registry
      .counter('tandem_router_cached_tokens_total', 'Prompt tokens served from a prefix cache')
      .with({});
    this.completionTokens = registry
      .counter('tandem_router_completion_tokens_total', 'Completion tokens returned')
      .with({});
    const seconds = (name: string, help: string, aliases: string[] = []): BoundHistogram =>
      registry.histogram(name, help, secondsBuckets, { aliases }).with({});
    this.ttft = seconds(
      'tandem_router_time_to_first_token_seconds',
      'Time to first token: routing decision to the first token from the worker (remote prefill and KV transfer included)',
      ['vllm:time_to_first_token_seconds'],
    );
    this.itl = seconds(
      'tandem_router_inter_token_latency_seconds',
      'Gap between consecutive tokens of a choice (a batch of k tokens counts as k gaps of 1/k)',
      ['vllm:inter_token_latency_seconds'],
    );
    this.tpot = seconds(
      'tandem_router_time_per_output_token_seconds',
      'Per choice: (last token - first token) / (tokens - 1)',
      ['vllm:request_time_per_output_token_seconds'],
    );
    this.e2e = seconds('tandem_router_request_duration_seconds', 'Request duration after admission', [
      'vllm:e2e_request_latency_seconds',
    ]);
    this.queue = seconds('tandem_router_queue_seconds', 'Wait for admission (the router queue)', [
      'vllm:request_queue_time_seconds',
    ]);
    this.decisionTime = seconds('tandem_router_decision_seconds', 'Time to pick a worker');
    this.inputTokens = registry
      .histogram('tandem_router_input_tokens', 'Prompt length per prompt (ISL)', tokenBuckets, {
        aliases: ['vllm:request_prompt_tokens'],
      })
      .with({});
    this.outputTokens = registry
      .histogram('tandem_router_output_tokens', 'Completion length per prompt (OSL)', tokenBuckets, {
        aliases: ['vllm:request_generation_tokens'],
      })
      .with({});
    this.#stopProcessMetrics = registerProcessMetrics(registry);
  }

  /** A gauge read at every scrape. */
  gauge(name: string, help: string, read: () => number): void {
    this.registry.gauge(name, help).track({}, read);
  }

  /** A gauge whose series (one per worker, say) are listed at every scrape. */
  gauges(name: string, help: string): Gauge {
    return this.registry.gauge(name, help);
  }

  render(): string {
    return this.registry.render();
  }

  /** The decisions counter of one (policy, worker), bound once: a decision is one addition. */
  decisionsOf(policy: string, worker: string): BoundCounter {
    const key = `${policy}\u0000${worker}`;
    let bound = this.#boundDecisions.get(key);
    if (bound === undefined) {
      bound = this.decisions.with({ policy, worker });
      this.#boundDecisions.set(key, bound);
    }
    return bound;
  }

  /** Drops a departed worker's series (workers come and go; their series must not pile up). */
  forgetWorker(workerId: string, policy: string): void {
    this.decisions.remove({ policy, worker: workerId });
    this.#boundDecisions.delete(`${policy}\u0000${workerId}`);
    this.prefillDecisions.remove({ type: 'remote', worker: workerId });
    for (const counter of [this.retries, this.hedges, this.failovers]) counter.remove({ worker: workerId });
  }

  close(): void {
    this.#stopProcessMetrics();
  }
}
