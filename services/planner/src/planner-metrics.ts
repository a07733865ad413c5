// The planner's own metrics in the Prometheus text format: every decision with its reason, the
// replica counts it saw and set, the signals it read, and failures by stage.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClusterSignals, PoolDecision, PoolName, PoolState } from './types.ts';

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

class Family {
  readonly values = new Map<string, number>();
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  constructor(name: string, help: string, type: 'counter' | 'gauge') {
    this.name = name;
    this.help = help;
    this.type = type;
  }
  add(labels: Labels, by: number): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  set(labels: Labels, value: number): void {
    this.values.set(labelKey(labels), value);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const [key, value] of this.values) lines.push(`${this.name}${key} ${value}`);
    return lines.join('\n');
  }
}

export class PlannerMetrics {
  readonly decisions = new Family(
    'tandem_planner_decisions_total',
    'Planner decisions by pool, direction (up, down, hold) and reason',
    'counter',
  );
  readonly replicas = new Family(
    'tandem_planner_replicas',
    'Replicas by pool and kind: desired (spec before the tick), current (pods alive), terminating (draining), target (after the tick)',
    'gauge',
  );
  readonly signals = new Family(
    'tandem_planner_signal',
    'The last value of each input signal (absent: no data)',
    'gauge',
  );
  readonly errors = new Family('tandem_planner_errors_total', 'Ticks that failed, by stage', 'counter');
  readonly lastTick = new Family(
    'tandem_planner_last_tick_timestamp_seconds',
    'When the last tick completed (unix seconds)',
    'gauge',
  );

  recordDecision(decision: PoolDecision, state: PoolState): void {
    const pool = decision.pool;
    this.decisions.add({ pool, direction: decision.direction, reason: decision.reason }, 1);
    this.replicas.set({ pool, kind: 'desired' }, state.desired);
    this.replicas.set({ pool, kind: 'current' }, state.current);
    this.replicas.set({ pool, kind: 'terminating' }, state.terminating);
    this.replicas.set({ pool, kind: 'target' }, decision.to);
  }

  recordSignals(signals: ClusterSignals): void {
    this.signals.values.clear();
    for (const [name, value] of Object.entries(signals)) {
      if (typeof value === 'number') this.signals.set({ name }, value);
    }
  }

  recordError(stage: 'signals' | 'scale_read' | 'scale_write', pool: PoolName | null = null): void {
    this.errors.add(pool === null ? { stage } : { stage, pool }, 1);
  }

  render(): string {
    const families = [this.decisions, this.replicas, this.signals, this.errors, this.lastTick];
    return `${families.map((f) => f.render()).join('\n')}\n`;
  }
}

/** GET /metrics and GET /healthz on host:port; resolves once listening. */
export async function serveMetrics(
  metrics: PlannerMetrics,
  host: string,
  port: number,
): Promise<{ server: Server; port: number }> {
  const server = createServer((request, response) => {
    if (request.method === 'GET' && request.url === '/metrics') {
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      response.end(metrics.render());
    } else if (request.method === 'GET' && request.url === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end('ok\n');
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
