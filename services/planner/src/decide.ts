// The decision: prefill and decode replica counts, each from its own signals, then coordinated
// (P:D ratio bounds, floors, ceilings). Pure apart from its memory of past scale events and
// recommendations, so the cluster, the tests and the simulator in bench/planner run the same code.
//
// Per pool, two candidates compete for "up": a load-based count (demand / per-replica capacity
// at the target utilization, which reacts before latency moves) and SLO feedback (p90 above
// upThreshold x SLO adds a step, which corrects a capacity set too high). Going down needs the
// load-based count below the current one, the p90 under downThreshold x SLO, no pressure, and
// that for the whole stabilization window; one step at a time, after the last drain finished.
import { decodeCapacityAt, type PlannerConfig } from './config.ts';
import type {
  ClusterSignals,
  DecisionReason,
  Direction,
  PoolDecision,
  PoolName,
  PoolState,
} from './types.ts';

interface Candidate {
  replicas: number;
  reason: DecisionReason;
}

/** What the planner remembers of a pool between ticks. */
interface PoolMemory {
  lastScaleAtS: number | null;
  lastUpAtS: number | null;
  /** (time, recommendation) of the stabilization window, oldest first. */
  recommendations: Array<{ atS: number; replicas: number }>;
  /** When the recommendations started (start, or the last scale event), or null. */
  observingSinceS: number | null;
  /** Since when every pod of the pool has been ready, or null while some start. */
  settledSinceS: number | null;
}

/** One tick's load, for the trend. */
interface LoadSample {
  atS: number;
  prefill: number | null;
  decode: number | null;
  kv: number | null;
}

/** A step up adds a quarter of the pool (at least one replica). */
function stepUp(replicas: number): number {
  return replicas + Math.max(1, Math.ceil(replicas * 0.25));
}

function highest(candidates: Candidate[]): Candidate | null {
  let best: Candidate | null = null;
  for (const candidate of candidates)
    if (best === null || candidate.replicas > best.replicas) best = candidate;
  return best;
}

export class Planner {
  readonly config: PlannerConfig;
  readonly #memory: Record<PoolName, PoolMemory> = {
    prefill: {
      lastScaleAtS: null,
      lastUpAtS: null,
      recommendations: [],
      observingSinceS: null,
      settledSinceS: null,
    },
    decode: {
      lastScaleAtS: null,
      lastUpAtS: null,
      recommendations: [],
      observingSinceS: null,
      settledSinceS: null,
    },
  };

  /** Recent load samples, for the trend: (time, prefill tokens/s, decode tokens/s, KV sum). */
  readonly #history: LoadSample[] = [];

  /** Decode tokens/s per replica at the target ITL, learned from ITL vs load, or null. */
  #decodeCapacity: number | null = null;

  /** The decode capacity in use: learned when it can be, else the profile's. */
  decodeCapacity(signals: ClusterSignals): number {
    return this.#decodeCapacity ?? decodeCapacityAt(this.config.decodeProfile, this.#meanContext(signals));
  }

  constructor(config: PlannerConfig) {
    this.config = config;
  }

  /** Both pools' decisions for this tick; call `applied` for each one that was carried out. */
  decide(
    nowS: number,
    signals: ClusterSignals,
    state: Record<PoolName, PoolState>,
  ): Record<PoolName, PoolDecision> {
    const c = this.config;
    const p = state.prefill.desired;
    const d = state.decode.desired;
    for (const pool of ['prefill', 'decode'] as const) {
      const memory = this.#memory[pool];
      if (state[pool].ready < state[pool].desired) memory.settledSinceS = null;
      else memory.settledSinceS ??= nowS;
    }
    // SLO feedback waits for the last step to land and show in the signals.
    const settled = (pool: PoolName): boolean => {
      const since = this.#memory[pool].settledSinceS;
      return since !== null && nowS - since >= c.settleS;
    };
    if (settled('decode')) this.#calibrateDecode(signals, state.decode.ready);
    this.#history.push({
      atS: nowS,
      prefill: signals.prefillTokensPerS,
      decode: signals.decodeTokensPerS,
      kv: signals.kvUsageSum,
    });
    while ((this.#history[0]?.atS ?? nowS) < nowS - c.trendWindowS) this.#history.shift();
    const ahead: ClusterSignals = {
      ...signals,
      prefillTokensPerS: this.#ahead(signals.prefillTokensPerS, (h) => h.prefill),
      decodeTokensPerS: this.#ahead(signals.decodeTokensPerS, (h) => h.decode),
      kvUsageSum: this.#ahead(signals.kvUsageSum, (h) => h.kv),
    };
    const prefillLoad = this.#prefillLoadReplicas(ahead);
    const decodeLoad = this.#decodeLoadReplicas(ahead);
    const ttftHigh = signals.ttftP90S !== null && signals.ttftP90S > c.upThreshold * c.sloTtftS;
    const itlHigh = signals.itlP90S !== null && signals.itlP90S > c.upThreshold * c.sloItlS;
    const queueHigh = signals.queueP90S !== null && signals.queueP90S > c.queueLimitS;
    // A slow first token is prefill's when prompts queue there: a quarter of the TTFT budget
    // or more to clear at the assumed speed. Otherwise it is decode's (requests wait for a
    // slot or pages) or already over.
    const prefillQueueS =
      (signals.queuedPrefillTokens ?? 0) / (Math.max(1, state.prefill.ready) * c.prefillTokensPerReplicaS);
    const prefillQueued = prefillQueueS > 0.25 * c.sloTtftS;

    const prefillUp: Candidate[] = [];
    if (prefillLoad !== null) prefillUp.push({ replicas: prefillLoad, reason: 'prefill_load' });
    if (ttftHigh && prefillQueued && settled('prefill'))
      prefillUp.push({ replicas: stepUp(p), reason: 'ttft_slo' });
    const decodeUp: Candidate[] = [];
    if (decodeLoad !== null) decodeUp.push({ replicas: decodeLoad.replicas, reason: decodeLoad.reason });
    if (settled('decode')) {
      if (itlHigh) decodeUp.push({ replicas: stepUp(d), reason: 'itl_slo' });
      if ((signals.kvUsageMax ?? 0) > c.kvUsageHigh)
        decodeUp.push({ replicas: stepUp(d), reason: 'kv_usage' });
      if ((signals.decodeRequestsWaiting ?? 0) > 0) {
        decodeUp.push({ replicas: stepUp(d), reason: 'decode_waiting' });
      }
    }
    if (queueHigh) {
      // Requests wait at the router: grow the pool under more pressure.
      const prefillPressure = Math.max(
        (signals.ttftP90S ?? 0) / c.sloTtftS,
        (prefillLoad ?? 0) / Math.max(1, p),
      );
      const decodePressure = Math.max(
        (signals.itlP90S ?? 0) / c.sloItlS,
        (decodeLoad?.replicas ?? 0) / Math.max(1, d),
        (signals.kvUsageMax ?? 0) / c.kvUsageTarget,
      );
      if (prefillPressure >= decodePressure) {
        if (settled('prefill')) prefillUp.push({ replicas: stepUp(p), reason: 'admission_queue' });
      } else if (settled('decode')) {
        decodeUp.push({ replicas: stepUp(d), reason: 'admission_queue' });
      }
    }

    const prefillCalm =
      !queueHigh &&
      !prefillQueued &&
      (signals.ttftP90S === null || signals.ttftP90S < c.downThreshold * c.sloTtftS) &&
      prefillUp.every((x) => x.reason === 'prefill_load');
    const decodeCalm =
      !queueHigh &&
      (signals.itlP90S === null || signals.itlP90S < c.downThreshold * c.sloItlS) &&
      (signals.kvUsageMax ?? 0) <= c.kvUsageTarget &&
      (signals.decodeRequestsWaiting ?? 0) === 0 &&
      decodeUp.every((x) => x.reason === 'decode_load' || x.reason === 'kv_load');

    const prefillTarget = this.#target('prefill', nowS, p, highest(prefillUp), prefillLoad, prefillCalm);
    const decodeTarget = this.#target(
      'decode',
      nowS,
      d,
      highest(decodeUp),
      decodeLoad?.replicas ?? null,
      decodeCalm,
    );

    this.#coordinate(prefillTarget, decodeTarget);
    const detail = {
      ttftP90S: signals.ttftP90S,
      itlP90S: signals.itlP90S,
      queueP90S: signals.queueP90S,
      prefillTokensPerS: signals.prefillTokensPerS,
      decodeTokensPerS: signals.decodeTokensPerS,
      queuedPrefillTokens: signals.queuedPrefillTokens,
      kvUsageMax: signals.kvUsageMax,
      decodeRequestsWaiting: signals.decodeRequestsWaiting,
    };
    return {
      prefill: this.#gate('prefill', nowS, state.prefill, prefillTarget, {
        ...detail,
        loadReplicas: prefillLoad,
      }),
      decode: this.#gate('decode', nowS, state.decode, decodeTarget, {
        ...detail,
        loadReplicas: decodeLoad?.replicas ?? null,
      }),
    };
  }

  /** Records a carried-out decision (cooldowns start from here). */
  applied(decision: PoolDecision, nowS: number): void {
    if (decision.to === decision.from) return;
    const memory = this.#memory[decision.pool];
    memory.lastScaleAtS = nowS;
    if (decision.to > decision.from) {
      memory.lastUpAtS = nowS;
      // Growing starts a new window: the calm before it was about a smaller load.
      memory.recommendations = [];
      memory.observingSinceS = null;
    }
  }

  /** Replicas the prefill demand (rate, plus the backlog when configured) needs, or null without data. */
  #prefillLoadReplicas(signals: ClusterSignals): number | null {
    const c = this.config;
    if (signals.prefillTokensPerS === null) return null;
    const backlog =
      c.prefillBacklogDrainS === null ? 0 : (signals.queuedPrefillTokens ?? 0) / c.prefillBacklogDrainS;
    const demand = signals.prefillTokensPerS + backlog;
    return Math.ceil(demand / (c.prefillTokensPerReplicaS * c.targetUtilization));
  }

  /** Replicas the decode token rate or the KV occupancy needs, whichever is more. */
  #decodeLoadReplicas(signals: ClusterSignals): Candidate | null {
    const c = this.config;
    const candidates: Candidate[] = [];
    if (signals.decodeTokensPerS !== null) {
      candidates.push({
        replicas: Math.ceil(signals.decodeTokensPerS / (this.decodeCapacity(signals) * c.targetUtilization)),
        reason: 'decode_load',
      });
    }
    if (signals.kvUsageSum !== null) {
      // The pages in use, plus what waiting requests would take (as much as a running one,
      // counting at most as many as run), over the target occupancy. Measured on the pods that
      // serve, it is a count, not a step: at most about twice the ready pool.
      const running = signals.decodeRequestsRunning ?? 0;
      const waiting = signals.decodeRequestsWaiting ?? 0;
      const need = signals.kvUsageSum * (running > 0 ? 1 + Math.min(1, waiting / running) : 1);
      candidates.push({ replicas: Math.ceil(need / c.kvUsageTarget - 1e-9), reason: 'kv_load' });
    }
    return highest(candidates);
  }

  /** `now` plus its rising trend (least-squares slope over the history) x lookaheadS. */
  #ahead(now: number | null, pick: (h: LoadSample) => number | null): number | null {
    if (now === null) return null;
    const points = this.#history
      .map((h) => [h.atS, pick(h)] as const)
      .filter((p): p is readonly [number, number] => p[1] !== null);
    if (points.length < 3) return now;
    const n = points.length;
    const meanT = points.reduce((s, p) => s + p[0], 0) / n;
    const meanY = points.reduce((s, p) => s + p[1], 0) / n;
    let num = 0;
    let den = 0;
    for (const [t, y] of points) {
      num += (t - meanT) * (y - meanY);
      den += (t - meanT) ** 2;
    }
    const slope = den > 0 ? num / den : 0;
    return slope > 0 ? now + slope * this.config.lookaheadS : now;
  }

  /**
   * Learns decode capacity from the ITL the ready replicas show at their load (see
   * PlannerConfig.decodeBaseStepS), smoothed, kept within 1/3x..3x of the profile.
   */
  #calibrateDecode(signals: ClusterSignals, ready: number): void {
    const c = this.config;
    const base = c.decodeBaseStepS;
    const itl = signals.itlP90S;
    const rate = signals.decodeTokensPerS;
    if (base === null || itl === null || rate === null || ready < 1 || rate <= 0) return;
    // Too close to the fixed cost (an idle pool) says nothing about the slope.
    if (itl - base < 0.1 * (0.8 * c.sloItlS - base)) return;
    const profile = decodeCapacityAt(c.decodeProfile, this.#meanContext(signals));
    const measured = ((rate / ready) * (0.8 * c.sloItlS - base)) / (itl - base);
    const bounded = Math.min(3 * profile, Math.max(profile / 3, measured));
    this.#decodeCapacity =
      this.#decodeCapacity === null ? bounded : 0.5 * this.#decodeCapacity + 0.5 * bounded;
  }

  /** Mean tokens per running sequence (KV in use / sequences), or null when unknown. */
  #meanContext(signals: ClusterSignals): number | null {
    const kvTokens = this.config.kvTokensPerReplica;
    const running = signals.decodeRequestsRunning ?? 0;
    if (kvTokens === null || signals.kvUsageSum === null || running <= 0) return null;
    return (signals.kvUsageSum * kvTokens) / running;
  }

  /** The pool's wanted count before coordination: up now, or down as the window allows. */
  #target(
    pool: PoolName,
    nowS: number,
    current: number,
    up: Candidate | null,
    load: number | null,
    calm: boolean,
  ): Candidate {
    const memory = this.#memory[pool];
    const window = this.config.downStabilizationS;
    // This tick's recommendation for the down path: the load-based count when all is calm.
    const recommendation = calm && load !== null ? Math.min(current, load) : current;
    memory.recommendations.push({ atS: nowS, replicas: recommendation });
    memory.observingSinceS ??= nowS;
    while ((memory.recommendations[0]?.atS ?? nowS) < nowS - window) memory.recommendations.shift();
    if (up !== null && up.replicas > current) return up;
    const windowFull = nowS - memory.observingSinceS >= window;
    const stable = Math.max(...memory.recommendations.map((r) => r.replicas));
    if (stable < current) {
      if (!windowFull) return { replicas: current, reason: 'stabilizing' };
      // A fraction of the pool per step (at least maxDownStep), each drained before the next.
      const step = Math.max(this.config.maxDownStep, Math.floor(current * this.config.maxDownFraction));
      return { replicas: Math.max(stable, current - step), reason: 'idle' };
    }
    return { replicas: current, reason: load === null && up === null ? 'no_signal' : 'steady' };
  }

  /** P:D ratio bounds (raising the low side), floors, then the pool and cluster ceilings. */
  #coordinate(prefill: Candidate, decode: Candidate): void {
    const c = this.config;
    const minPrefill = Math.ceil(decode.replicas * c.ratioMin - 1e-9);
    if (prefill.replicas < minPrefill) Object.assign(prefill, { replicas: minPrefill, reason: 'ratio' });
    const minDecode = Math.ceil(prefill.replicas / c.ratioMax - 1e-9);
    if (decode.replicas < minDecode) Object.assign(decode, { replicas: minDecode, reason: 'ratio' });
    for (const [pool, target] of [
      ['prefill', prefill],
      ['decode', decode],
    ] as const) {
      const { min, max } = c[pool];
      if (target.replicas < min) Object.assign(target, { replicas: min, reason: 'floor' });
      if (target.replicas > max) Object.assign(target, { replicas: max, reason: 'ceiling' });
    }
    const total = prefill.replicas + decode.replicas;
    if (c.maxTotalReplicas !== null && total > c.maxTotalReplicas) {
      // Shrink both, keeping their proportion, each at least its floor.
      const prefillShare = Math.round((c.maxTotalReplicas * prefill.replicas) / total);
      const p = Math.min(Math.max(c.prefill.min, prefillShare), c.maxTotalReplicas - c.decode.min);
      Object.assign(prefill, { replicas: p, reason: 'ceiling' });
      Object.assign(decode, { replicas: c.maxTotalReplicas - p, reason: 'ceiling' });
    }
  }

  /** Cooldowns and drains between the wanted count and what is done now. */
  #gate(
    pool: PoolName,
    nowS: number,
    state: PoolState,
    target: Candidate,
    detail: Record<string, number | null>,
  ): PoolDecision {
    const c = this.config;
    const memory = this.#memory[pool];
    const from = state.desired;
    const decision = (to: number, reason: DecisionReason): PoolDecision => {
      const direction: Direction = to > from ? 'up' : to < from ? 'down' : 'hold';
      return { pool, from, to, direction, reason, detail };
    };
    if (target.replicas === from) return decision(from, target.reason);
    const sinceScale = memory.lastScaleAtS === null ? Number.POSITIVE_INFINITY : nowS - memory.lastScaleAtS;
    // Floors and ceilings are corrections, not load: they skip cooldowns.
    const forced = target.reason === 'floor' || target.reason === 'ceiling';
    if (target.replicas > from) {
      // Load-based counts are absolute (the demand over a replica's capacity): they may grow a
      // pool at any tick. Steps (SLO feedback, occupancy) wait out the cooldown.
      const absolute =
        target.reason === 'prefill_load' ||
        target.reason === 'decode_load' ||
        target.reason === 'kv_load' ||
        target.reason === 'ratio';
      if (!forced && !absolute && sinceScale < c.upCooldownS) return decision(from, 'cooldown');
      return decision(target.replicas, target.reason);
    }
    if (!forced) {
      const sinceUp = memory.lastUpAtS === null ? Number.POSITIVE_INFINITY : nowS - memory.lastUpAtS;
      if (Math.min(sinceScale, sinceUp) < c.downCooldownS) return decision(from, 'cooldown');
      if (state.terminating > 0) return decision(from, 'draining');
    }
    return decision(target.replicas, target.reason);
  }
}
