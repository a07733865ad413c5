// The scorers and filters policies are assembled from. Each is pure over its declared inputs.
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
  /** Cost of each request already running or waiting on a worker, in ms (decode-load term). */
  decodeMsPerRequest: number;
  /**
   * Extra weight on prompt tokens a worker would recompute although another candidate holds
   * them (duplicate prefill): 0 prices only this request's time to first token.
   */
  duplicatePrefillWeight: number;
}

/**
 * Predicted time to first token plus a decode-load term plus a duplicate-compute term, in ms:
 * (uncached prompt tokens + the worker's queued prefill tokens) / its prefill rate
 * + decodeMsPerRequest * the requests decoding on it
 * + duplicatePrefillWeight * (the best candidate's cached tokens - its own) / its prefill rate.
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
      return candidates.map((worker) => {
        const depth = inputs.matchDepthBySlot?.[worker.slot] ?? 0;
        const numCachedTokens = cachedTokensOf(worker);
        const numUncachedTokens = request.numPromptTokens - numCachedTokens;
        const numQueuedPrefillTokens = worker.numQueuedPrefillTokens;
        const prefillMs = (numUncachedTokens + numQueuedPrefillTokens) / worker.prefillTokensPerMs;
        // Fresh counts, not the (up to a second old) load report: a stale report would herd
        // every request of that second onto the other workers.
        const numDecoding = worker.numDecoding;
        const decodeMs = params.decodeMsPerRequest * numDecoding;
        const numDuplicateTokens = numBestCachedTokens - numCachedTokens;
        const duplicateMs = (params.duplicatePrefillWeight * numDuplicateTokens) / worker.prefillTokensPerMs;
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
          },
        };
      });
    },
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
