// The scorers and filters policies are assembled from. Each is pure over its declared inputs.
import { ownOrPooled, pooledStepCosts, trustedStepCost } from './step-cost.ts';
import { hashString } from './string-hash.ts';
import type { CandidateFilter, RoutingInputs, RoutingRequest, Score, Scorer, WorkerView } from './types.ts';

/** Requests running or waiting on the worker: the larger of what it reported and what we sent. */
export function loadOf(worker: WorkerView): number {
  const reported = worker.load === null ? 0 : worker.load.numRunning + worker.load.numWaiting;
  return Math.max(reported, worker.numInflight);
}

/** Every candidate costs the same: the picker's tie order decides (round robin). */
export const flatScorer: Scorer = {
  name: 'flat',
  inputs: [],
  score: (_request, candidates) => candidates.map(() => ({ cost: 0, terms: {} })),
};

/** A uniform draw per candidate from the injected random source. */
export const randomScorer: Scorer = {
  name: 'random',
  inputs: ['random'],
  score: (_request, candidates, inputs) =>
    candidates.map(() => {
      const draw = inputs.random();
      return { cost: draw, terms: { draw } };
    }),
};

/** Reported load (running + waiting requests), raised to in-flight counts where those are higher. */
export const loadScorer: Scorer = {
  name: 'load',
  inputs: ['load', 'inflight'],
  score: (_request, candidates) =>
    candidates.map((worker) => {
      const load = loadOf(worker);
      return { cost: load, terms: { load } };
    }),
};

/** Rendezvous (highest random weight) hashing on the routing key, else on the request id. */
export const rendezvousScorer: Scorer = {
  name: 'rendezvous',
  inputs: ['routingKey'],
  score: (request, candidates) => {
    const key = request.routingKey ?? request.requestId;
    return candidates.map((worker) => {
      const weight = hashString(`${key}\u0000${worker.workerId}`) / 2 ** 53;
      return { cost: 1 - weight, terms: { weight } };
    });
  },
};

export interface CacheAwareParams {
  /**
   * Cost of each request decoding on a worker, in ms, for a worker without a trusted step-cost
   * fit (with one, the fit's own base and per-sequence step costs are used).
   */
  decodeMsPerRequest: number;
  /**
   * Extra weight on prompt tokens a worker would recompute although another candidate holds
   * them (duplicate prefill): 0 prices only this request's time to first token.
   */
  duplicatePrefillWeight: number;
}

/**
 * Predicted time to first token plus a duplicate-compute term, in ms:
 *   prefillMs   = (uncached prompt tokens + the worker's queued prefill tokens) x ms per prompt token
 *   decodeMs    = the step the first token rides in: base + ms per decoding sequence x sequences
 *                 decoding there (fit), or decodeMsPerRequest x sequences (no trusted fit)
 *   duplicateMs = duplicatePrefillWeight x (the best candidate's cached tokens - its own) x ms per token
 * Ms per prompt token is the worker's own least-squares fit of its steps (LoadReport.step_cost)
 * when trusted (step-cost.ts), else 1 / the router's EWMA of its first-token rate; the fit and
 * its error (R^2, rmse, steps) are recorded with the decision.
 *
 * Why the last term: TTFT alone splits a group of prompts with one prefix as soon as the holder's
 * queue is a prefix-length longer than another worker's, and every split recomputes the prefix
 * (compute the whole cluster pays, on shared hardware literally) and spreads the group's later
 * requests over two caches. The term is 0 for a prefix nobody holds and for unrelated traffic, so
 * those still spread on load alone.
 */
export function cacheAwareScorer(params: CacheAwareParams): Scorer {
  return {
    name: 'cache_aware',
    inputs: ['prefix', 'load', 'inflight', 'prefillRate'],
    score: (request, candidates, inputs): Score[] => {
      const cachedTokensOf = (worker: WorkerView): number => {
        const depth = inputs.matchDepthBySlot?.[worker.slot] ?? 0;
        return Math.min(depth * worker.pageSize, request.numPromptTokens);
      };
      let numBestCachedTokens = 0;
      for (const worker of candidates)
        numBestCachedTokens = Math.max(numBestCachedTokens, cachedTokensOf(worker));
      const pooled = pooledStepCosts(candidates.map((worker) => worker.stepCost));
      return candidates.map((worker) => {
        const depth = inputs.matchDepthBySlot?.[worker.slot] ?? 0;
        const numCachedTokens = cachedTokensOf(worker);
        const numUncachedTokens = request.numPromptTokens - numCachedTokens;
        const numQueuedPrefillTokens = worker.numQueuedPrefillTokens;
        const msPerToken = 1 / worker.prefillTokensPerMs;
        const prefillMs = (numUncachedTokens + numQueuedPrefillTokens) * msPerToken;
        // Fresh counts, not the (up to a second old) load report: a stale report would herd
        // every request of that second onto the other workers.
        const numDecoding = worker.numDecoding;
        // A worker without a trusted fit of its own (too few steps yet) is priced by the pool's:
        // pricing it by another model (the EWMA, no base step cost) would bias every idle
        // comparison towards it.
        const fit = trustedStepCost(worker.stepCost);
        const step = fit === null ? pooled : ownOrPooled(fit, pooled);
        const decodeMs =
          step === null
            ? params.decodeMsPerRequest * numDecoding
            : Math.max(0, step.baseMs + step.decodeMsPerSequence * numDecoding);
        const numDuplicateTokens = numBestCachedTokens - numCachedTokens;
        const duplicateMs = params.duplicatePrefillWeight * numDuplicateTokens * msPerToken;
        return {
          cost: prefillMs + decodeMs + duplicateMs,
          terms: {
            matchedBlocks: depth,
            cachedTokens: numCachedTokens,
            uncachedTokens: numUncachedTokens,
            queuedPrefillTokens: numQueuedPrefillTokens,
            prefillTokensPerMs: worker.prefillTokensPerMs,
            prefillMs,
            numDecoding,
            decodeMs,
            duplicateTokens: numDuplicateTokens,
            duplicateMs,
            ...fitTerms(worker, step !== null),
          },
        };
      });
    },
  };
}

/** The worker's reported fit and whether the costs above came from it (1) or the EWMA (0). */
function fitTerms(worker: WorkerView, used: boolean): Record<string, number> {
  const fit = worker.stepCost;
  if (fit === null) return { costFromFit: 0 };
  return {
    costFromFit: used ? 1 : 0,
    fitBaseMs: fit.baseMs,
    fitPrefillMsPerToken: fit.prefillMsPerToken,
    fitDecodeMsPerSequence: fit.decodeMsPerSequence,
    fitRSquared: fit.rSquared,
    fitRmseMs: fit.rmseMs,
    fitSteps: fit.numSteps,
    fitPrefillSteps: fit.numPrefillSteps,
  };
}

export interface HotspotParams {
  /** A worker with more than factor x the mean in-flight requests is skipped... */
  factor: number;
  /** ...once it has at least this many. */
  minInflight: number;
}

/** Keeps one worker from collecting a whole burst because it holds the hottest prefix. */
export function hotspotFilter(params: HotspotParams): CandidateFilter {
  return {
    name: 'hotspot_guard',
    inputs: ['inflight', 'load'],
    exclude: (_request, candidates) => {
      const excluded = new Map<string, string>();
      if (candidates.length < 2) return excluded;
      const loads = candidates.map(loadOf);
      const mean = loads.reduce((sum, load) => sum + load, 0) / candidates.length;
      candidates.forEach((worker, i) => {
        const load = loads[i]!;
        if (load >= params.minInflight && load > params.factor * mean) {
          excluded.set(
            worker.workerId,
            `hot spot: load ${load} > ${params.factor} x mean ${mean.toFixed(2)}`,
          );
        }
      });
      return excluded.size === candidates.length ? new Map() : excluded;
    },
  };
}

/** power-of-two: only two candidates, drawn from the injected random source, are scored. */
export const sampleTwoFilter: CandidateFilter = {
  name: 'sample_two',
  inputs: ['random'],
  exclude: (_request: RoutingRequest, candidates: readonly WorkerView[], inputs: RoutingInputs) => {
    const excluded = new Map<string, string>();
    if (candidates.length <= 2) return excluded;
    const first = Math.floor(inputs.random() * candidates.length);
    let second = Math.floor(inputs.random() * (candidates.length - 1));
    if (second >= first) second++;
    candidates.forEach((worker, i) => {
      if (i !== first && i !== second) excluded.set(worker.workerId, 'not sampled');
    });
    return excluded;
  },
};

export interface BalanceParams {
  /** Imbalanced when max load - min load exceeds this (SGLang's balance_abs_threshold)... */
  absThreshold: number;
  /** ...and max load exceeds min load x this (balance_rel_threshold). */
  relThreshold: number;
}

/**
 * SGLang's load-balance guard: while the candidates' loads are imbalanced (both thresholds
 * passed), only the least loaded compete (the cost then only orders equals), so a hot prefix
 * cannot pile its whole burst onto its holder. Balanced loads pass everyone.
 */
export function loadBalanceFilter(params: BalanceParams): CandidateFilter {
  return {
    name: 'load_balance',
    inputs: ['inflight', 'load'],
    exclude: (_request, candidates) => {
      const excluded = new Map<string, string>();
      if (candidates.length < 2) return excluded;
      const loads = candidates.map(loadOf);
      const max = Math.max(...loads);
      const min = Math.min(...loads);
      if (!(max - min > params.absThreshold && max > min * params.relThreshold)) return excluded;
      candidates.forEach((worker, i) => {
        if (loads[i]! > min) {
          excluded.set(
            worker.workerId,
            `imbalance: max load ${max} - min ${min} > ${params.absThreshold} and > ${params.relThreshold} x min: least load only`,
          );
        }
      });
      return excluded;
    },
  };
}
