// The planner's knobs. Capacities are per replica and come from profiling the model on the
// hardware (bench/cuda gives them for Llama 8B on H100 / H200); the SLO feedback corrects a
// capacity that is set too high.
import { ConfigError } from '@tandem/common';

export interface PoolLimits {
  min: number;
  max: number;
}

export interface PlannerConfig {
  /** Service-level objectives on the router's p90s, seconds. */
  sloTtftS: number;
  sloItlS: number;
  prefill: PoolLimits;
  decode: PoolLimits;
  /** Prefill + decode replicas at most (GPUs of the cluster), or null. */
  maxTotalReplicas: number | null;
  /** Bounds on prefill / decode replicas: the side below them is raised. */
  ratioMin: number;
  ratioMax: number;
  /** Scale up when a p90 passes this fraction of its SLO ... */
  upThreshold: number;
  /** ... and allow scaling down only while it stays under this fraction. */
  downThreshold: number;
  /** Uncached prompt tokens per second one prefill replica computes. */
  prefillTokensPerReplicaS: number;
  /**
   * Completion tokens per second one decode replica streams within the ITL SLO, by the mean
   * context (tokens) of its sequences, ascending: a profile of the model on the hardware
   * (longer contexts read more KV per step). One entry: the same at every context.
   */
  decodeProfile: Array<{ context: number; tokensPerS: number }>;
  /**
   * Decode step time at batch 1, seconds (the profile's fixed cost), or null. With it the planner
   * calibrates decode capacity online: step time grows about linearly with a replica's load, so
   * load x (target - base) / (ITL - base) is what a replica carries at the target ITL (0.8 x SLO).
   */
  decodeBaseStepS: number | null;
  /** KV tokens one decode replica holds (pages x page size), to estimate the mean context, or null. */
  kvTokensPerReplica: number | null;
  /**
   * Load-based counts size for the load expected this many seconds ahead (a new pod's start-up
   * plus a tick): the rising trend of the last `trendWindowS` is extrapolated (never a falling
   * one: shrinking waits for the load itself). 0: size for now.
   */
  lookaheadS: number;
  trendWindowS: number;
  /** Fraction of a replica's capacity the load-based count aims at (headroom for bursts). */
  targetUtilization: number;
  /** Decode KV occupancy the pool is sized for, and the level that scales up at once. */
  kvUsageTarget: number;
  kvUsageHigh: number;
  /** Router admission wait p90 above which the busier pool grows, seconds. */
  queueLimitS: number;
  /**
   * Queued prefill tokens count as demand, to clear within this many seconds (null: not at all).
   * A prompt queued on a prefill worker stays there (the router chose the worker), so a backlog
   * says less about what new replicas will do than about the rate being underestimated during
   * a ramp (the rate is a windowed average); in the bench, null lets bursts run away.
   */
  prefillBacklogDrainS: number | null;
  /**
   * SLO feedback grows a pool only once all its pods have been ready this long, so latency
   * measured over the signal window reflects the last step (load-based counts need no wait).
   */
  settleS: number;
  /** Seconds after a scale event of a pool before it may grow again / shrink. */
  upCooldownS: number;
  downCooldownS: number;
  /** A scale-down takes the highest recommendation of this many past seconds (HPA's rule). */
  downStabilizationS: number;
  /** Replicas removed per scale-down at least (a quarter of the pool when more; each step drains before the next). */
  maxDownStep: number;
  /** ... or this fraction of the pool when that is more (0.25: a quarter). */
  maxDownFraction: number;
}

export const defaultPlannerConfig: PlannerConfig = {
  sloTtftS: 1.0,
  sloItlS: 0.03,
  prefill: { min: 1, max: 16 },
  decode: { min: 1, max: 32 },
  maxTotalReplicas: null,
  ratioMin: 0.1,
  ratioMax: 2,
  upThreshold: 0.85,
  downThreshold: 0.6,
  prefillTokensPerReplicaS: 30_000,
  decodeProfile: [{ context: 1024, tokensPerS: 4_000 }],
  kvTokensPerReplica: null,
  decodeBaseStepS: null,
  lookaheadS: 60,
  trendWindowS: 60,
  targetUtilization: 0.75,
  kvUsageTarget: 0.7,
  kvUsageHigh: 0.9,
  queueLimitS: 0.25,
  prefillBacklogDrainS: 2,
  settleS: 15,
  upCooldownS: 20,
  downCooldownS: 60,
  downStabilizationS: 120,
  maxDownStep: 1,
  maxDownFraction: 0.25,
};

/** Throws a ConfigError naming the first bad field. */
export function validatePlannerConfig(config: PlannerConfig): PlannerConfig {
  const positive: Array<keyof PlannerConfig> = [
    'sloTtftS',
    'sloItlS',
    'ratioMin',
    'ratioMax',
    'prefillTokensPerReplicaS',
  ];
  for (const key of positive) {
    const value = config[key];
    if (typeof value !== 'number' || !(value > 0)) throw new ConfigError(`${key} must be > 0, got ${value}`);
  }
  for (const key of [
    'upThreshold',
    'downThreshold',
    'targetUtilization',
    'kvUsageTarget',
    'kvUsageHigh',
  ] as const) {
    if (!(config[key] > 0 && config[key] <= 1))
      throw new ConfigError(`${key} must be in (0, 1], got ${config[key]}`);
  }
  if (config.downThreshold >= config.upThreshold) {
    throw new ConfigError(
      `downThreshold (${config.downThreshold}) must be below upThreshold (${config.upThreshold})`,
    );
  }
  if (config.ratioMin > config.ratioMax) {
    throw new ConfigError(`ratioMin (${config.ratioMin}) must be <= ratioMax (${config.ratioMax})`);
  }
  for (const pool of ['prefill', 'decode'] as const) {
    const { min, max } = config[pool];
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < Math.max(1, min)) {
      throw new ConfigError(`${pool} replicas: need integers 0 <= min <= max, max >= 1; got ${min}..${max}`);
    }
  }
  if (config.maxTotalReplicas !== null && config.maxTotalReplicas < config.prefill.min + config.decode.min) {
    throw new ConfigError(`maxTotalReplicas (${config.maxTotalReplicas}) is below the two floors`);
  }
  for (const key of [
    'lookaheadS',
    'trendWindowS',
    'settleS',
    'upCooldownS',
    'downCooldownS',
    'downStabilizationS',
    'queueLimitS',
  ] as const) {
    if (!(config[key] >= 0)) throw new ConfigError(`${key} must be >= 0, got ${config[key]}`);
  }
  if (
    config.decodeProfile.length === 0 ||
    config.decodeProfile.some(
      (p, i) =>
        !(p.context > 0 && p.tokensPerS > 0) ||
        (i > 0 && p.context <= (config.decodeProfile[i - 1]?.context ?? 0)),
    )
  ) {
    throw new ConfigError(
      'decodeProfile needs entries with context > 0 and tokensPerS > 0, contexts ascending',
    );
  }
  if (
    config.decodeBaseStepS !== null &&
    !(config.decodeBaseStepS > 0 && config.decodeBaseStepS < 0.8 * config.sloItlS)
  ) {
    throw new ConfigError(
      `decodeBaseStepS must be > 0 and below 0.8 x the ITL SLO, got ${config.decodeBaseStepS}`,
    );
  }
  if (config.prefillBacklogDrainS !== null && !(config.prefillBacklogDrainS > 0)) {
    throw new ConfigError(`prefillBacklogDrainS must be > 0 or null, got ${config.prefillBacklogDrainS}`);
  }
  if (config.kvTokensPerReplica !== null && !(config.kvTokensPerReplica > 0)) {
    throw new ConfigError(`kvTokensPerReplica must be > 0, got ${config.kvTokensPerReplica}`);
  }
  if (!(config.maxDownFraction >= 0 && config.maxDownFraction < 1)) {
    throw new ConfigError(`maxDownFraction must be in [0, 1), got ${config.maxDownFraction}`);
  }
  if (!Number.isInteger(config.maxDownStep) || config.maxDownStep < 1) {
    throw new ConfigError(`maxDownStep must be an integer >= 1, got ${config.maxDownStep}`);
  }
  return config;
}

/**
 * Decode tokens/s of one replica at a mean context: log-log interpolation between the profile's
 * entries, flat beyond its ends; without a context (null) the lowest capacity (the safe side).
 */
export function decodeCapacityAt(profile: PlannerConfig['decodeProfile'], context: number | null): number {
  if (context === null) return Math.min(...profile.map((p) => p.tokensPerS));
  const first = profile[0];
  const last = profile[profile.length - 1];
  if (first === undefined || last === undefined) return 1;
  if (context <= first.context) return first.tokensPerS;
  if (context >= last.context) return last.tokensPerS;
  for (let i = 1; i < profile.length; i++) {
    const lo = profile[i - 1];
    const hi = profile[i];
    if (lo === undefined || hi === undefined || context > hi.context) continue;
    const f = Math.log(context / lo.context) / Math.log(hi.context / lo.context);
    return Math.exp(Math.log(lo.tokensPerS) * (1 - f) + Math.log(hi.tokensPerS) * f);
  }
  return last.tokensPerS;
}

/** `512:8226,4096:659` -> a decode profile (the --decode-profile flag). */
export function parseDecodeProfile(text: string): PlannerConfig['decodeProfile'] {
  return text.split(',').map((entry) => {
    const [context, tokensPerS] = entry.split(':').map((x) => Number(x.trim()));
    if (
      context === undefined ||
      tokensPerS === undefined ||
      !Number.isFinite(context) ||
      !Number.isFinite(tokensPerS)
    ) {
      throw new ConfigError(`--decode-profile entries are CONTEXT:TOKENS_PER_S, got '${entry}'`, {
        param: '--decode-profile',
      });
    }
    return { context, tokensPerS };
  });
}
