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
  /** Completion tokens per second one decode replica streams within the ITL SLO. */
  decodeTokensPerReplicaS: number;
  /** Fraction of a replica's capacity the load-based count aims at (headroom for bursts). */
  targetUtilization: number;
  /** Decode KV occupancy the pool is sized for, and the level that scales up at once. */
  kvUsageTarget: number;
  kvUsageHigh: number;
  /** Router admission wait p90 above which the busier pool grows, seconds. */
  queueLimitS: number;
  /** A backlog of queued prefill tokens should clear within this many seconds. */
  prefillBacklogDrainS: number;
  /** Seconds after a scale event of a pool before it may grow again / shrink. */
  upCooldownS: number;
  downCooldownS: number;
  /** A scale-down takes the highest recommendation of this many past seconds (HPA's rule). */
  downStabilizationS: number;
  /** Replicas removed per scale-down (each drains before the next step). */
  maxDownStep: number;
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
  decodeTokensPerReplicaS: 6_000,
  targetUtilization: 0.75,
  kvUsageTarget: 0.7,
  kvUsageHigh: 0.9,
  queueLimitS: 0.25,
  prefillBacklogDrainS: 0.5,
  upCooldownS: 20,
  downCooldownS: 60,
  downStabilizationS: 120,
  maxDownStep: 1,
};

/** Throws a ConfigError naming the first bad field. */
export function validatePlannerConfig(config: PlannerConfig): PlannerConfig {
  const positive: Array<keyof PlannerConfig> = [
    'sloTtftS',
    'sloItlS',
    'ratioMin',
    'ratioMax',
    'prefillTokensPerReplicaS',
    'decodeTokensPerReplicaS',
    'prefillBacklogDrainS',
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
  for (const key of ['upCooldownS', 'downCooldownS', 'downStabilizationS', 'queueLimitS'] as const) {
    if (!(config[key] >= 0)) throw new ConfigError(`${key} must be >= 0, got ${config[key]}`);
  }
  if (!Number.isInteger(config.maxDownStep) || config.maxDownStep < 1) {
    throw new ConfigError(`maxDownStep must be an integer >= 1, got ${config.maxDownStep}`);
  }
  return config;
}
