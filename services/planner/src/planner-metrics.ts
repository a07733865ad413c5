// The planner's own metrics, on the common registry (services/common/src/metrics): every decision
// with its reason, the replica counts it saw and set, the signals it read, failures by stage, and
// the standard process series. `tandem planner` serves them with the common metrics server
// (GET /metrics, GET /healthz).
import {
  type Counter,
  formatLabels,
  type Gauge,
  type Labels,
  MetricsRegistry,
  registerProcessMetrics,
} from '@tandem/common';
import type { ClusterSignals, PoolDecision, PoolName, PoolState } from './types.ts';

export class PlannerMetrics {
  readonly registry: MetricsRegistry;
  /** Decisions by label set ({pool,direction,reason} as formatLabels writes it): read at scrape time. */
  readonly #decisions = new Map<string, { labels: Labels; count: number }>();
  #signals: ClusterSignals | null = null;
  readonly #replicas: Gauge;
  readonly #errors: Counter;
  readonly #lastTick: Gauge;
  readonly #stopProcessMetrics: () => void;

  constructor(registry = new MetricsRegistry()) {
    this.registry = registry;
    registry
      .counter(
        'tandem_planner_decisions_total',
        'Planner decisions by pool, direction (up, down, hold) and reason',
      )
      .trackAll(() => [...this.#decisions.values()].map(({ labels, count }) => [labels, count] as const));
    this.#replicas = registry.gauge(
      'tandem_planner_replicas',
      'Replicas by pool and kind: desired (spec before the tick), current (pods alive), terminating (draining), target (after the tick)',
    );
    registry
      .gauge('tandem_planner_signal', 'The last value of each input signal (absent: no data)')
      .trackAll(() =>
        Object.entries(this.#signals ?? {}).flatMap(([name, value]) =>
          typeof value === 'number' ? [[{ name }, value] as const] : [],
        ),
      );
    this.#errors = registry.counter('tandem_planner_errors_total', 'Ticks that failed, by stage');
    this.#lastTick = registry.gauge(
      'tandem_planner_last_tick_timestamp_seconds',
      'When the last tick completed (unix seconds)',
    );
    this.#stopProcessMetrics = registerProcessMetrics(registry);
  }

  recordDecision(decision: PoolDecision, state: PoolState): void {
    const pool = decision.pool;
    const labels = { pool, direction: decision.direction, reason: decision.reason };
    const key = formatLabels(labels);
    const entry = this.#decisions.get(key) ?? { labels, count: 0 };
    entry.count++;
    this.#decisions.set(key, entry);
    this.#replicas.set({ pool, kind: 'desired' }, state.desired);
    this.#replicas.set({ pool, kind: 'current' }, state.current);
    this.#replicas.set({ pool, kind: 'terminating' }, state.terminating);
    this.#replicas.set({ pool, kind: 'target' }, decision.to);
  }

  recordSignals(signals: ClusterSignals): void {
    this.#signals = signals;
  }

  recordError(stage: 'signals' | 'scale_read' | 'scale_write', pool: PoolName | null = null): void {
    this.#errors.inc(pool === null ? { stage } : { stage, pool });
  }

  recordTick(nowS: number): void {
    this.#lastTick.set({}, nowS);
  }

  /** Decision counts by label set, e.g. `{pool="decode",direction="up",reason="decode_load"}`. */
  decisionCounts(): Map<string, number> {
    return new Map([...this.#decisions].map(([key, { count }]) => [key, count]));
  }

  render(): string {
    return this.registry.render();
  }

  close(): void {
    this.#stopProcessMetrics();
  }
}
