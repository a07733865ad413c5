// Which prefill worker (P) computes a prompt for the chosen decode worker (D), and whether one does
// at all (conditional disaggregation): a policy of the same scorer/picker framework as routing
// (evaluate.ts), pure over its inputs; the dispatcher builds the views, applies the decision and
// records it.
//
// Cost of P, in ms (lower is better), the sum of two scorers:
//   prefill:  (promptTokens - cachedTokens(P) + queuedPrefillTokens(P)) / prefillTokensPerMs(P)
//             cachedTokens = min(leading blocks of the prompt P holds x pageSize, promptTokens)
//   transfer: KV bytes D lacks (its uncached pages, all layers, K and V) / link rate D <- P
// The link rate is the same-host rate when P's gRPC host is D's, else the cross-host rate, so a
// P next to D wins a close call. Ties (within the tolerances) go to the larger cached prefix, then
// fewer queued tokens, then the least recently picked P, then the smaller worker id.
//
// Whether: D prefills locally when fewer than `disaggThreshold` prompt tokens are uncached on D
// (what a local prefill would compute there; 0 sends every prompt to a P). P's cache decides which
// P, not whether: a prefix P holds makes the remote prefill cheap, but a prefix D holds makes the
// local one cheaper still (no transfer, nothing to compute twice).
import { evaluate, type PolicySpec } from './evaluate.ts';
import type { CandidateRecord, PrefillRequest, PrefillWorkerView, RoutingInputs, Scorer } from './types.ts';

export type { PrefillRequest, PrefillWorkerView } from './types.ts';

export interface PrefillPolicyParams {
  /** D prefills locally when fewer prompt tokens than this are uncached on D (0: never). */
  disaggThreshold: number;
  /** KV transfer rate between workers on one host, bytes per ms. */
  sameHostBytesPerMs: number;
  /** ... and between hosts. */
  crossHostBytesPerMs: number;
  tieRelativeTolerance: number;
  tieAbsoluteToleranceMs: number;
}

export const defaultPrefillPolicyParams: PrefillPolicyParams = {
  disaggThreshold: 0,
  sameHostBytesPerMs: 2_000_000, // 2 GB/s: below the 4-6 GB/s measured on loopback
  crossHostBytesPerMs: 1_000_000, // 1 GB/s: a 10 GbE link, roughly
  tieRelativeTolerance: 0.15,
  tieAbsoluteToleranceMs: 0.5,
};

interface Considered {
  threshold: number;
  numUncachedOnDecode: number;
  /** Every prefill worker with its cost terms (PrefillRecord adds its address). */
  candidates: PrefillRecord[];
}

export type PrefillRecord = CandidateRecord & { address: string };

export type PrefillDecision =
  /** P computes the prompt into D's pages. */
  | ({ type: 'remote'; workerId: string; address: string; numUncachedTokens: number } & Considered)
  /** D prefills itself and asks no P. */
  | ({ type: 'local'; reason: string } & Considered)
  /** No decision: the request carries none, and D decides (e.g. the router knows no P yet). */
  | { type: 'undecided'; reason: string };

/** Time to compute the prompt's uncached part on P behind what P already has queued. */
export const prefillTimeScorer: Scorer<PrefillWorkerView, PrefillRequest> = {
  name: 'prefill_time',
  inputs: ['prefix', 'load', 'prefillRate'],
  score: (request, workers, inputs) =>
    workers.map((worker) => {
      const depth = worker.slot === -1 ? 0 : (inputs.matchDepthBySlot?.[worker.slot] ?? 0);
      const cachedTokens = Math.min(depth * worker.pageSize, request.numPromptTokens);
      const uncachedTokens = request.numPromptTokens - cachedTokens;
      const prefillMs = (uncachedTokens + worker.numQueuedPrefillTokens) / worker.prefillTokensPerMs;
      return {
        cost: prefillMs,
        terms: {
          matchedBlocks: depth,
          cachedTokens,
          uncachedTokens,
          queuedPrefillTokens: worker.numQueuedPrefillTokens,
          prefillTokensPerMs: worker.prefillTokensPerMs,
          prefillMs,
        },
      };
    }),
};

/** Time to move the KV pages D lacks from P to D, at the link rate between their hosts. */
export function transferScorer(params: PrefillPolicyParams): Scorer<PrefillWorkerView, PrefillRequest> {
  return {
    name: 'transfer',
    inputs: ['transfer'],
    score: (request, workers) => {
      const transferBytes = transferBytesOf(request);
      return workers.map((worker) => {
        const bytesPerMs = worker.sameHostAsDecode ? params.sameHostBytesPerMs : params.crossHostBytesPerMs;
        const transferMs = transferBytes / bytesPerMs;
        return {
          cost: transferMs,
          terms: { transferBytes, transferMs, sameHost: worker.sameHostAsDecode ? 1 : 0 },
        };
      });
    },
  };
}

/** KV bytes D lacks: P writes [cached pages on D, last prompt page] into D. */
function transferBytesOf(request: PrefillRequest): number {
  const numTransferPages = Math.max(
    0,
    Math.ceil(request.numPromptTokens / request.decodePageSize) -
      Math.floor(request.numCachedOnDecode / request.decodePageSize),
  );
  return numTransferPages * request.decodeKvBytesPerPage;
}

function prefillPolicySpec(params: PrefillPolicyParams): PolicySpec<PrefillWorkerView, PrefillRequest> {
  return {
    name: 'prefill',
    filters: [],
    scorers: [
      { scorer: prefillTimeScorer, weight: 1 },
      { scorer: transferScorer(params), weight: 1 },
    ],
    picker: {
      relativeTolerance: params.tieRelativeTolerance,
      absoluteTolerance: params.tieAbsoluteToleranceMs,
      tieOnLoad: true,
    },
    loadOf: (worker) => worker.numQueuedPrefillTokens,
  };
}

/** Scores every P (in workerId order) and decides; `matchDepthBySlot` holds P's prefix matches. */
export function choosePrefill(
  request: PrefillRequest,
  workers: readonly PrefillWorkerView[],
  matchDepthBySlot: Uint32Array,
  params: PrefillPolicyParams,
): PrefillDecision {
  if (workers.length === 0) return { type: 'undecided', reason: 'no prefill worker known' };
  const numUncachedOnDecode = request.numPromptTokens - request.numCachedOnDecode;
  const sorted = [...workers].sort((a, b) =>
    a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0,
  );
  const inputs: RoutingInputs = { matchDepthBySlot, random: () => 0 };
  const { chosen, records } = evaluate(prefillPolicySpec(params), request, sorted, inputs);
  const candidates = records.map((record, i) => ({ ...record, address: sorted[i]!.grpcAddress }));
  const considered: Considered = { threshold: params.disaggThreshold, numUncachedOnDecode, candidates };
  if (numUncachedOnDecode < params.disaggThreshold) {
    return {
      type: 'local',
      reason: `${numUncachedOnDecode} prompt tokens uncached on the decode worker < --disagg-threshold ${params.disaggThreshold}`,
      ...considered,
    };
  }
  const best = candidates.find((record) => record.workerId === chosen!.workerId)!;
  return {
    type: 'remote',
    workerId: best.workerId,
    address: best.address,
    numUncachedTokens: best.terms.uncachedTokens ?? request.numPromptTokens,
    ...considered,
  };
}
