// The named routing policies, each a list of filters, weighted scorers and picker settings
// (evaluate.ts runs them).
import { evaluate, type PolicySpec } from './evaluate.ts';
import type { PickerParams } from './picker.ts';
import {
  cacheAwareScorer,
  flatScorer,
  hotspotFilter,
  loadOf,
  loadScorer,
  randomScorer,
  rendezvousScorer,
  sampleTwoFilter,
} from './scorers.ts';
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
        loadOf,
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
