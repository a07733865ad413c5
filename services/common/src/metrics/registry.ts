// One small Prometheus registry (text exposition format 0.0.4) for every tandem process: counters,
// gauges and histograms kept in plain maps, so the hot path only adds to numbers. A series may
// also be read at scrape time (`track`), which is how cumulative stats a component already keeps
// (engine counters, pool occupancy) are exported without touching its hot path. A metric may have
// aliases: the same series under another name (vLLM's, for autoscalers that key on them), with
// `model` also given as vLLM's `model_name`.
//
// A registry made with `enabled: false` records nothing and renders nothing: the baseline the
// serving benchmark compares against.

export type Labels = Readonly<Record<string, string>>;

export interface MetricOptions {
  /** Other names the same series are exported under (e.g. 'vllm:num_requests_waiting'). */
  aliases?: readonly string[];
}

export interface RegistryOptions {
  /** Labels on every series of this registry (a worker's {worker, role, model}). */
  constLabels?: Labels;
  /** false: instruments do nothing and render() is empty. Default true. */
  enabled?: boolean;
}

type MetricType = 'counter' | 'gauge' | 'histogram';

/** `{a="x",b="y"}` with Prometheus escaping (backslash, quote, newline); '' for no labels. */
export function formatLabels(labels: Labels): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(labels)) {
    parts.push(`${key}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  }
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** vLLM names its model label model_name: aliases carry both. */
function aliasLabels(labels: Labels): Labels {
  return labels.model === undefined ? labels : { ...labels, model_name: labels.model };
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

interface Series {
  labels: Labels;
  value: number;
  /** Read at scrape time instead of `value`. */
  read: (() => number) | null;
}

abstract class Metric {
  readonly name: string;
  readonly help: string;
  readonly aliases: readonly string[];
  protected readonly registry: MetricsRegistry;
  abstract readonly type: MetricType;

  constructor(registry: MetricsRegistry, name: string, help: string, options: MetricOptions) {
    this.registry = registry;
    this.name = name;
    this.help = help;
    this.aliases = options.aliases ?? [];
  }

  /** The exposition lines of this metric under `name` (its own or an alias). */
  abstract lines(name: string, alias: boolean): string[];

  render(): string {
    const blocks: string[] = [];
    for (const [name, alias] of [
      [this.name, false] as const,
      ...this.aliases.map((a) => [a, true] as const),
    ]) {
      const lines = this.lines(name, alias);
      blocks.push([`# HELP ${name} ${this.help}`, `# TYPE ${name} ${this.type}`, ...lines].join('\n'));
    }
    return blocks.join('\n');
  }
}

/** Counters and gauges: one number per label set. */
abstract class ScalarMetric extends Metric {
  readonly #series = new Map<string, Series>();
  readonly #collectors: (() => Iterable<readonly [Labels, number]>)[] = [];

  protected seriesOf(labels: Labels): Series {
    const key = formatLabels(labels);
    let series = this.#series.get(key);
    if (series === undefined) {
      series = { labels: this.registry.withConstLabels(labels), value: 0, read: null };
      this.#series.set(key, series);
    }
    return series;
  }

  /** Reports `read()` for `labels` at every scrape (a cumulative or current value kept elsewhere). */
  track(labels: Labels, read: () => number): void {
    if (!this.registry.enabled) return;
    this.seriesOf(labels).read = read;
  }

  /** Reports every (labels, value) `read()` yields at each scrape: series that come and go (per worker). */
  trackAll(read: () => Iterable<readonly [Labels, number]>): void {
    if (!this.registry.enabled) return;
    this.#collectors.push(read);
  }

  /** Forgets a label set (a worker that left). */
  remove(labels: Labels): void {
    this.#series.delete(formatLabels(labels));
  }

  lines(name: string, alias: boolean): string[] {
    const lines: string[] = [];
    for (const series of this.#series.values()) {
      const value = series.read === null ? series.value : series.read();
      lines.push(
        `${name}${formatLabels(alias ? aliasLabels(series.labels) : series.labels)} ${formatValue(value)}`,
      );
    }
    for (const read of this.#collectors) {
      for (const [own, value] of read()) {
        const labels = this.registry.withConstLabels(own);
        lines.push(`${name}${formatLabels(alias ? aliasLabels(labels) : labels)} ${formatValue(value)}`);
      }
    }
    return lines;
  }
}

export interface BoundCounter {
  inc(by?: number): void;
}

export class Counter extends ScalarMetric {
  readonly type = 'counter';

  inc(labels: Labels = {}, by = 1): void {
    if (!this.registry.enabled) return;
    this.seriesOf(labels).value += by;
  }

  /** The series for fixed labels, resolved once (for hot paths). */
  with(labels: Labels): BoundCounter {
    if (!this.registry.enabled) return { inc: () => {} };
    const series = this.seriesOf(labels);
    return {
      inc: (by = 1) => {
        series.value += by;
      },
    };
  }
}

export interface BoundGauge {
  set(value: number): void;
  inc(by?: number): void;
}

export class Gauge extends ScalarMetric {
  readonly type = 'gauge';

  set(labels: Labels, value: number): void {
    if (!this.registry.enabled) return;
    this.seriesOf(labels).value = value;
  }

  inc(labels: Labels = {}, by = 1): void {
    if (!this.registry.enabled) return;
    this.seriesOf(labels).value += by;
  }

  with(labels: Labels): BoundGauge {
    if (!this.registry.enabled) return { set: () => {}, inc: () => {} };
    const series = this.seriesOf(labels);
    return {
      set: (value) => {
        series.value = value;
      },
      inc: (by = 1) => {
        series.value += by;
      },
    };
  }
}

export interface BoundHistogram {
  observe(value: number): void;
}

interface HistogramSeries {
  labels: Labels;
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last slot: above every bound. */
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric {
  readonly type = 'histogram';
  /** Upper bounds, ascending (+Inf is implied). */
  readonly bounds: readonly number[];
  readonly #series = new Map<string, HistogramSeries>();

  constructor(
    registry: MetricsRegistry,
    name: string,
    help: string,
    bounds: readonly number[],
    options: MetricOptions,
  ) {
    super(registry, name, help, options);
    this.bounds = [...bounds].sort((a, b) => a - b);
  }

  #seriesOf(labels: Labels): HistogramSeries {
    const key = formatLabels(labels);
    let series = this.#series.get(key);
    if (series === undefined) {
      series = {
        labels: this.registry.withConstLabels(labels),
        counts: new Array<number>(this.bounds.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      this.#series.set(key, series);
    }
    return series;
  }

  #add(series: HistogramSeries, value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    series.counts[i]!++;
    series.sum += value;
    series.count++;
  }

  observe(value: number, labels: Labels = {}): void {
    if (!this.registry.enabled) return;
    this.#add(this.#seriesOf(labels), value);
  }

  with(labels: Labels): BoundHistogram {
    if (!this.registry.enabled) return { observe: () => {} };
    const series = this.#seriesOf(labels);
    return { observe: (value) => this.#add(series, value) };
  }

  lines(name: string, alias: boolean): string[] {
    const lines: string[] = [];
    for (const series of this.#series.values()) {
      const labels = alias ? aliasLabels(series.labels) : series.labels;
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += series.counts[i]!;
        lines.push(`${name}_bucket${formatLabels({ ...labels, le: formatValue(bound) })} ${cumulative}`);
      });
      lines.push(`${name}_bucket${formatLabels({ ...labels, le: '+Inf' })} ${series.count}`);
      lines.push(`${name}_sum${formatLabels(labels)} ${formatValue(series.sum)}`);
      lines.push(`${name}_count${formatLabels(labels)} ${series.count}`);
    }
    return lines;
  }
}

/** Latency buckets in seconds, 100 µs to 60 s. */
export const secondsBuckets: readonly number[] = [
  0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 2.5, 5, 10,
  30, 60,
];

/** Token-count buckets (prompt and output lengths, batch sizes): powers of two to 128k. */
export const tokenBuckets: readonly number[] = Array.from({ length: 18 }, (_, i) => 2 ** i);

export class MetricsRegistry {
  readonly enabled: boolean;
  readonly #constLabels: Labels;
  readonly #metrics = new Map<string, Metric>();

  constructor(options: RegistryOptions = {}) {
    this.enabled = options.enabled ?? true;
    this.#constLabels = options.constLabels ?? {};
  }

  /** `labels` with the registry's constant labels first. */
  withConstLabels(labels: Labels): Labels {
    return Object.keys(this.#constLabels).length === 0 ? labels : { ...this.#constLabels, ...labels };
  }

  counter(name: string, help: string, options: MetricOptions = {}): Counter {
    return this.#add(new Counter(this, name, help, options));
  }

  gauge(name: string, help: string, options: MetricOptions = {}): Gauge {
    return this.#add(new Gauge(this, name, help, options));
  }

  histogram(name: string, help: string, bounds: readonly number[], options: MetricOptions = {}): Histogram {
    return this.#add(new Histogram(this, name, help, bounds, options));
  }

  /** The exposition text of every metric (empty when disabled). */
  render(): string {
    if (!this.enabled) return '';
    const blocks: string[] = [];
    for (const metric of this.#metrics.values()) blocks.push(metric.render());
    return blocks.length === 0 ? '' : `${blocks.join('\n')}\n`;
  }

  #add<M extends Metric>(metric: M): M {
    for (const name of [metric.name, ...metric.aliases]) {
      if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new RangeError(`invalid metric name '${name}'`);
      if (this.#metrics.has(name) || [...this.#metrics.values()].some((m) => m.aliases.includes(name))) {
        throw new RangeError(`metric '${name}' is registered twice`);
      }
    }
    this.#metrics.set(metric.name, metric);
    return metric;
  }
}
