// Prometheus metrics in the text exposition format (GET /metrics), kept in plain maps: the
// router's hot path only increments numbers.

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

class Counter {
  readonly values = new Map<string, number>();
  readonly name: string;
  readonly help: string;
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [key, value] of this.values) lines.push(`${this.name}${key} ${value}`);
    return lines.join('\n');
  }
}

class Histogram {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;
  readonly name: string;
  readonly help: string;
  readonly bounds: readonly number[];
  constructor(name: string, help: string, bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.bounds = bounds;
    this.#counts = bounds.map(() => 0);
  }
  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    this.bounds.forEach((bound, i) => {
      if (value <= bound) this.#counts[i]!++;
    });
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.bounds.forEach((bound, i) => {
      lines.push(`${this.name}_bucket{le="${bound}"} ${this.#counts[i]}`);
    });
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.#count}`);
    lines.push(`${this.name}_sum ${this.#sum}`, `${this.name}_count ${this.#count}`);
    return lines.join('\n');
  }
}

const secondsBuckets = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class RouterMetrics {
  readonly requests = new Counter('tandem_router_requests_total', 'HTTP requests by route and status');
  readonly decisions = new Counter(
    'tandem_router_routing_decisions_total',
    'Routing decisions by chosen worker',
  );
  readonly prefillDecisions = new Counter(
    'tandem_router_prefill_decisions_total',
    'Decode-worker prompts by prefill decision (remote on a prefill worker, local, undecided)',
  );
  readonly streamErrors = new Counter(
    'tandem_router_stream_errors_total',
    'Errors sent inside an open stream (the response had status 200), by error code',
  );
  readonly retries = new Counter('tandem_router_retries_total', 'Requests retried on another worker');
  readonly hedges = new Counter(
    'tandem_router_hedges_total',
    'Silent attempts given a twin on another worker (the worker named is the twin)',
  );
  readonly failovers = new Counter(
    'tandem_router_failovers_total',
    'Workers that failed mid-stream (their choices continued elsewhere)',
  );
  readonly promptTokens = new Counter('tandem_router_prompt_tokens_total', 'Prompt tokens routed');
  readonly cachedTokens = new Counter(
    'tandem_router_cached_tokens_total',
    'Prompt tokens served from a prefix cache',
  );
  readonly completionTokens = new Counter(
    'tandem_router_completion_tokens_total',
    'Completion tokens returned',
  );
  readonly ttft = new Histogram(
    'tandem_router_time_to_first_token_seconds',
    'Time to first token',
    secondsBuckets,
  );
  readonly decisionTime = new Histogram(
    'tandem_router_decision_seconds',
    'Time to pick a worker',
    secondsBuckets,
  );
  readonly e2e = new Histogram('tandem_router_request_duration_seconds', 'Request duration', secondsBuckets);
  readonly #gauges = new Map<string, { help: string; read: () => number }>();

  gauge(name: string, help: string, read: () => number): void {
    this.#gauges.set(name, { help, read });
  }

  render(): string {
    const parts = [
      this.requests,
      this.decisions,
      this.prefillDecisions,
      this.streamErrors,
      this.retries,
      this.hedges,
      this.failovers,
      this.promptTokens,
      this.cachedTokens,
      this.completionTokens,
      this.ttft,
      this.decisionTime,
      this.e2e,
    ].map((metric) => metric.render());
    for (const [name, { help, read }] of this.#gauges) {
      parts.push(`# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${read()}`);
    }
    return `${parts.join('\n')}\n`;
  }
}
