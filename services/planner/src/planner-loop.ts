// One tick: read the signals and both pools, decide, carry out what changed (victims first on
// the way down), log every decision and count it with its reason. The cluster runs it on a
// timer (planner-command.ts); the simulator in bench/planner calls tick() on simulated time.
import type { Logger } from '@tandem/common';
import type { Planner } from './decide.ts';
import type { PlannerMetrics } from './planner-metrics.ts';
import {
  type ClusterSignals,
  emptySignals,
  type PoolDecision,
  type PoolName,
  type PoolState,
  poolNames,
  type Scaler,
  type SignalSource,
} from './types.ts';

export interface PlannerLoopOptions {
  planner: Planner;
  signals: SignalSource;
  scaler: Scaler;
  metrics: PlannerMetrics;
  logger: Logger;
}

/** The `count` least-loaded workers (ties by name, so the choice is deterministic). */
export function pickVictims(loads: Map<string, number>, count: number): string[] {
  return [...loads.entries()]
    .sort(([a, x], [b, y]) => x - y || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, Math.max(0, count))
    .map(([worker]) => worker);
}

export class PlannerLoop {
  readonly #o: PlannerLoopOptions;

  constructor(options: PlannerLoopOptions) {
    this.#o = options;
  }

  /** Runs one tick at `nowS` (seconds on the caller's clock); returns the decisions made. */
  async tick(nowS: number): Promise<Record<PoolName, PoolDecision> | null> {
    const { planner, scaler, metrics, logger } = this.#o;
    let signals: ClusterSignals;
    try {
      signals = await this.#o.signals.read();
    } catch (error) {
      // Without signals the planner holds; the floors still apply through decide().
      metrics.recordError('signals');
      logger.warn('signals unavailable; holding', { error: String(error) });
      signals = emptySignals();
    }
    metrics.recordSignals(signals);
    const state = {} as Record<PoolName, PoolState>;
    for (const pool of poolNames) {
      try {
        state[pool] = await scaler.read(pool);
      } catch (error) {
        metrics.recordError('scale_read', pool);
        logger.warn('cannot read the pool; skipping this tick', { pool, error: String(error) });
        return null;
      }
    }
    const decisions = planner.decide(nowS, signals, state);
    for (const pool of poolNames) {
      const decision = decisions[pool];
      metrics.recordDecision(decision, state[pool]);
      if (decision.direction === 'hold') continue;
      try {
        const victims =
          decision.direction === 'down'
            ? pickVictims(await this.#o.signals.workerLoads(pool), decision.from - decision.to)
            : [];
        await scaler.scale(pool, decision.to, victims);
        planner.applied(decision, nowS);
        if (victims.length > 0) logger.info('draining', { pool, victims });
      } catch (error) {
        metrics.recordError('scale_write', pool);
        logger.warn('scale failed', { pool, to: decision.to, error: String(error) });
      }
    }
    logger.info('decision', {
      prefill: `${decisions.prefill.direction} ${decisions.prefill.from}->${decisions.prefill.to} (${decisions.prefill.reason})`,
      decode: `${decisions.decode.direction} ${decisions.decode.from}->${decisions.decode.to} (${decisions.decode.reason})`,
      signals: decisions.prefill.detail,
      prefillLoadReplicas: decisions.prefill.detail.loadReplicas ?? null,
      decodeLoadReplicas: decisions.decode.detail.loadReplicas ?? null,
    });
    metrics.recordTick(Date.now() / 1000);
    return decisions;
  }
}
