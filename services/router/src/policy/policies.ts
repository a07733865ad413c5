// The named policies, each a list of filters, weighted scorers and picker settings.
import { type PickerParams, pick } from './picker.ts';
import {
  cacheAwareScorer,
  flatScorer,
  hotspotFilter,
  loadScorer,
  randomScorer,
  rendezvousScorer,
  sampleTwoFilter,
} from './scorers.ts';
import type {
  CandidateFilter,
  CandidateRecord,
  Decision,
  Policy,
  RoutingInputs,
  RoutingRequest,
  Scorer,
  WorkerView,
} from './types.ts';

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
  /** Decode-load term: ms of predicted delay per request already on the worker. */
  decodeMsPerRequest: number;
  /** Weight on prompt tokens a candidate would recompute although another candidate holds them. */
  duplicatePrefillWeight: number;
  hotspotFactor: number;
  hotspotMinInflight: number;
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
  tieRelativeTolerance: 0.15,
  tieAbsoluteToleranceMs: 0.5,
};

interface PolicySpec {
  name: PolicyName;
  filters: readonly CandidateFilter[];
  scorers: readonly { scorer: Scorer; weight: number }[];
  picker: PickerParams;
}

const exact: PickerParams = { relativeTolerance: 0, absoluteTolerance: 0, tieOnLoad: true };

function specFor(name: PolicyName, config: CacheAwareConfig): PolicySpec {
  switch (name) {
    case 'round_robin':
      return {
        name,
        filters: [],
        scorers: [{ scorer: flatScorer, weight: 1 }],
        picker: { ...exact, tieOnLoad: false },
      };
    case 'random':
      return { name, filters: [], scorers: [{ scorer: randomScorer, weight: 1 }], picker: exact };
    case 'power_of_two':
      return {
        name,
        filters: [sampleTwoFilter],
        scorers: [{ scorer: loadScorer, weight: 1 }],
        picker: exact,
      };
    case 'consistent_hash':
      return { name, filters: [], scorers: [{ scorer: rendezvousScorer, weight: 1 }], picker: exact };
    case 'cache_aware':
      return {
        name,
        filters: [hotspotFilter({ factor: config.hotspotFactor, minInflight: config.hotspotMinInflight })],
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
      };
  }
}

export function createPolicy(name: PolicyName, config: CacheAwareConfig = defaultCacheAwareConfig): Policy {
  const spec = specFor(name, config);
  const needsPrefix = spec.scorers.some(({ scorer }) => scorer.inputs.includes('prefix'));
  return {
    name,
    needsPrefix,
    decide: (request, candidates, inputs) => decide(spec, request, candidates, inputs),
  };
}

function decide(
  spec: PolicySpec,
  request: RoutingRequest,
  candidates: readonly WorkerView[],
  inputs: RoutingInputs,
): Decision {
  const records = new Map<string, CandidateRecord>();
  for (const worker of candidates) {
    records.set(worker.workerId, { workerId: worker.workerId, cost: null, terms: {}, excluded: null });
  }
  let remaining = candidates;
  for (const filter of spec.filters) {
    const excluded = filter.exclude(request, remaining, inputs);
    if (excluded.size === 0) continue;
    for (const [workerId, reason] of excluded) records.get(workerId)!.excluded = `${filter.name}: ${reason}`;
    remaining = remaining.filter((worker) => !excluded.has(worker.workerId));
  }
  const costs = remaining.map(() => 0);
  for (const { scorer, weight } of spec.scorers) {
    const scores = scorer.score(request, remaining, inputs);
    scores.forEach((score, i) => {
      costs[i]! += weight * score.cost;
      Object.assign(records.get(remaining[i]!.workerId)!.terms, score.terms);
    });
  }
  remaining.forEach((worker, i) => {
    records.get(worker.workerId)!.cost = costs[i]!;
  });
  const affinities = remaining.map((worker) => records.get(worker.workerId)!.terms.cachedTokens ?? 0);
  const chosen = pick(remaining, costs, spec.picker, affinities);
  return {
    requestId: request.requestId,
    policy: spec.name,
    numPromptTokens: request.numPromptTokens,
    numPromptBlocks: request.blockKeys.length >>> 1,
    workerId: chosen?.workerId ?? null,
    candidates: [...records.values()],
  };
}
