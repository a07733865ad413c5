// The named routing policies, each a list of filters, weighted scorers and picker settings
// (evaluate.ts runs them).
import { evaluate, type PolicySpec } from './evaluate.ts';
import type { PickerParams } from './picker.ts';
import {
  cacheAwareScorer,
  flatScorer,
  hotspotFilter,
  loadBalanceFilter,
  loadOf,
  loadScorer,
  randomScorer,
  rendezvousScorer,
  sampleTwoFilter,
} from './scorers.ts';
import { type SessionTable, sessionAffinityFilter, sessionOutcome } from './session-affinity.ts';
import type { Decision, Policy, RoutingRequest, WorkerView } from './types.ts';

export const policyNames = [
  'round_robin',
  'random',
  'power_of_two',
  'consistent_hash',
  'cache_aware',
] as const;
export type PolicyName = (typeof policyNames)[number];

export function isPolicyName(name: string): name is PolicyName {
  return (policyNames as readonly string[]).includes(name);
}

export interface CacheAwareConfig {
  /** Decode-load term without a trusted step-cost fit: ms of delay per request decoding on the worker. */
  decodeMsPerRequest: number;
  /** Weight on prompt tokens a candidate would recompute although another candidate holds them. */
  duplicatePrefillWeight: number;
  hotspotFactor: number;
  hotspotMinInflight: number;
  /** SGLang's guard: least load only while max - min load > this... */
  balanceAbsThreshold: number;
  /** ...and max > min x this. */
  balanceRelThreshold: number;
  /** Costs within this fraction of the best tie (then load, then least recently picked). */
  tieRelativeTolerance: number;
  /** Costs within this many ms of the best tie. */
  tieAbsoluteToleranceMs: number;
}

export const defaultCacheAwareConfig: CacheAwareConfig = {
  decodeMsPerRequest: 2,
  duplicatePrefillWeight: 8,
  hotspotFactor: 2,
  hotspotMinInflight: 4,
  balanceAbsThreshold: 32,
  balanceRelThreshold: 1.0001,
  tieRelativeTolerance: 0.15,
  tieAbsoluteToleranceMs: 0.5,
};

type RoutingPolicySpec = PolicySpec<WorkerView, RoutingRequest> & { name: PolicyName };

const exact: PickerParams = { relativeTolerance: 0, absoluteTolerance: 0, tieOnLoad: true };

function specFor(name: PolicyName, config: CacheAwareConfig): RoutingPolicySpec {
  switch (name) {
    case 'round_robin':
      return {
        name,
        filters: [],
        scorers: [{ scorer: flatScorer, weight: 1 }],
        picker: { ...exact, tieOnLoad: false },
        loadOf,
      };
    case 'random':
      return { name, filters: [], scorers: [{ scorer: randomScorer, weight: 1 }], picker: exact, loadOf };
    case 'power_of_two':
      return {
        name,
        filters: [sampleTwoFilter],
        scorers: [{ scorer: loadScorer, weight: 1 }],
        picker: exact,
        loadOf,
      };
    case 'consistent_hash':
      return { name, filters: [], scorers: [{ scorer: rendezvousScorer, weight: 1 }], picker: exact, loadOf };
    case 'cache_aware':
      return {
        name,
        filters: [
          loadBalanceFilter({
            absThreshold: config.balanceAbsThreshold,
            relThreshold: config.balanceRelThreshold,
          }),
          hotspotFilter({ factor: config.hotspotFactor, minInflight: config.hotspotMinInflight }),
        ],
        scorers: [
          {
            scorer: cacheAwareScorer({
              decodeMsPerRequest: config.decodeMsPerRequest,
              duplicatePrefillWeight: config.duplicatePrefillWeight,
            }),
            weight: 1,
          },
        ],
        picker: {
          relativeTolerance: config.tieRelativeTolerance,
          absoluteTolerance: config.tieAbsoluteToleranceMs,
          tieOnLoad: true,
        },
        loadOf,
      };
  }
}

/**
 * The named policy. With a session table, requests with a session key stick to the worker that
 * served the session while it is a candidate and not overloaded (consistent_hash already routes
 * by the key and keeps no table); each decision records the session's outcome and moves it.
 */
export function createPolicy(
  name: PolicyName,
  config: CacheAwareConfig = defaultCacheAwareConfig,
  sessions: SessionTable | null = null,
): Policy {
  const base = specFor(name, config);
  const overloaded = overloadCheck(config);
  const affinity = sessions !== null && name !== 'consistent_hash';
  // The session filter runs after the load guards: a worker they exclude is not kept.
  const spec: RoutingPolicySpec = affinity
    ? { ...base, filters: [...base.filters, sessionAffinityFilter(sessions, overloaded)] }
    : base;
  const needsPrefix = spec.scorers.some(({ scorer }) => scorer.inputs.includes('prefix'));
  return {
    name,
    needsPrefix,
    decide: (request, candidates, inputs) => {
      const key = affinity ? request.routingKey : null;
      if (key === null) return decide(spec, request, candidates, inputs);
      const previous = sessions!.workerOf(key);
      const decision = decide(spec, request, candidates, inputs);
      const previousRecord = decision.candidates.find((c) => c.workerId === previous);
      const excludedBefore =
        previousRecord?.excluded != null && !previousRecord.excluded.startsWith('session:')
          ? previousRecord.excluded
          : null;
      decision.session = sessionOutcome(
        key,
        previous,
        decision.workerId,
        candidates,
        overloaded,
        excludedBefore,
      );
      if (decision.workerId !== null) sessions!.remember(key, decision.workerId);
      return decision;
    },
  };
}

/**
 * A session's worker is overloaded (the session moves) when its load breaks either guard of
 * cache_aware: SGLang's imbalance against the least loaded candidate, or the hot-spot factor
 * over the mean.
 */
function overloadCheck(
  config: CacheAwareConfig,
): (worker: WorkerView, candidates: readonly WorkerView[]) => string | null {
  return (worker, candidates) => {
    const load = loadOf(worker);
    const loads = candidates.map(loadOf);
    const min = Math.min(...loads);
    if (load - min > config.balanceAbsThreshold && load > min * config.balanceRelThreshold)
      return `overloaded: load ${load} vs least ${min}`;
    const mean = loads.reduce((sum, l) => sum + l, 0) / loads.length;
    if (candidates.length > 1 && load >= config.hotspotMinInflight && load > config.hotspotFactor * mean)
      return `overloaded: load ${load} > ${config.hotspotFactor} x mean ${mean.toFixed(2)}`;
    return null;
  };
}

function decide(
  spec: RoutingPolicySpec,
  request: RoutingRequest,
  candidates: readonly WorkerView[],
  inputs: Parameters<Policy['decide']>[2],
): Decision {
  const { chosen, records } = evaluate(spec, request, candidates, inputs);
  return {
    requestId: request.requestId,
    policy: spec.name,
    numPromptTokens: request.numPromptTokens,
    numPromptBlocks: request.blockKeys.length >>> 1,
    workerId: chosen?.workerId ?? null,
    candidates: records,
  };
}
