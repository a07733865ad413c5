// Which prefill worker (P) computes a prompt for the chosen decode worker (D), and whether one does
// at all (conditional disaggregation). Pure over its inputs, like the policies: the dispatcher
// builds the views, applies the decision and records it.
//
// Cost of P, in ms (lower is better):
//   cachedTokens  = min(leading blocks of the prompt P holds x pageSize, promptTokens)
//   prefillMs     = (promptTokens - cachedTokens + queuedPrefillTokens(P)) / prefillTokensPerMs(P)
//   transferMs    = KV bytes D lacks (its uncached pages, all layers, K and V) / link rate D <- P
//   cost          = prefillMs + transferMs
// The link rate is the same-host rate when P's gRPC host is D's, else the cross-host rate, so a
// P next to D wins a close call. Ties (within the tolerances) go to the larger cached prefix, then
// fewer queued tokens, then the least recently picked P, then the smaller worker id.
//
// Whether: D prefills locally when fewer than `disaggThreshold` prompt tokens are uncached on D
// (what a local prefill would compute there; 0 sends every prompt to a P). P's cache decides which
// P, not whether: a prefix P holds makes the remote prefill cheap, but a prefix D holds makes the
// local one cheaper still (no transfer, nothing to compute twice).

export interface PrefillWorkerView {
  workerId: string;
  grpcAddress: string;
  /** Its slot in the KV index (-1: none, so never for its cache). */
  slot: number;
  pageSize: number;
  /** This router's prompts sent through it without a first token yet plus others' (load report). */
  numQueuedPrefillTokens: number;
  prefillTokensPerMs: number;
  /** Order of its last pick by this router (0: never). */
  lastPickedSeq: number;
  /** Whether its gRPC host is the decode worker's (loopback transfer). */
  sameHostAsDecode: boolean;
}

export interface PrefillChoiceRequest {
  numPromptTokens: number;
  /** Prompt tokens the decode worker holds (index, leading full pages). */
  numCachedOnDecode: number;
  /** The decode worker's page size and KV bytes per page (all layers, K and V; 0: unknown). */
  decodePageSize: number;
  decodeKvBytesPerPage: number;
}

export interface PrefillChoiceParams {
  /** D prefills locally when fewer prompt tokens than this are uncached on D (0: never). */
  disaggThreshold: number;
  /** KV transfer rate between workers on one host, bytes per ms. */
  sameHostBytesPerMs: number;
  /** ... and between hosts. */
  crossHostBytesPerMs: number;
  tieRelativeTolerance: number;
  tieAbsoluteToleranceMs: number;
}

export const defaultPrefillChoiceParams: PrefillChoiceParams = {
  disaggThreshold: 0,
  sameHostBytesPerMs: 2_000_000, // 2 GB/s: below the 4-6 GB/s measured on loopback
  crossHostBytesPerMs: 1_000_000, // 1 GB/s: a 10 GbE link, roughly
  tieRelativeTolerance: 0.15,
  tieAbsoluteToleranceMs: 0.5,
};

export interface PrefillCandidateRecord {
  workerId: string;
  address: string;
  cost: number;
  terms: Record<string, number>;
}

interface Considered {
  threshold: number;
  numUncachedOnDecode: number;
  candidates: PrefillCandidateRecord[];
}

export type PrefillDecision =
  /** P computes the prompt into D's pages. */
  | ({ type: 'remote'; workerId: string; address: string; numUncachedTokens: number } & Considered)
  /** D prefills itself and asks no P. */
  | ({ type: 'local'; reason: string } & Considered)
  /** No decision: the request carries none, and D decides (e.g. the router knows no P yet). */
  | { type: 'undecided'; reason: string };

/** Scores every P (in workerId order) and decides; `matchDepthBySlot` holds P's prefix matches. */
export function choosePrefill(
  request: PrefillChoiceRequest,
  workers: readonly PrefillWorkerView[],
  matchDepthBySlot: Uint32Array,
  params: PrefillChoiceParams,
): PrefillDecision {
  if (workers.length === 0) return { type: 'undecided', reason: 'no prefill worker known' };
  const numUncachedOnDecode = request.numPromptTokens - request.numCachedOnDecode;
  // Pages D lacks: P writes [cached pages on D, last prompt page] into D.
  const numTransferPages = Math.max(
    0,
    Math.ceil(request.numPromptTokens / request.decodePageSize) -
      Math.floor(request.numCachedOnDecode / request.decodePageSize),
  );
  const transferBytes = numTransferPages * request.decodeKvBytesPerPage;
  const sorted = [...workers].sort((a, b) =>
    a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0,
  );
  const candidates = sorted.map((worker): PrefillCandidateRecord => {
    const depth = worker.slot === -1 ? 0 : (matchDepthBySlot[worker.slot] ?? 0);
    const cachedTokens = Math.min(depth * worker.pageSize, request.numPromptTokens);
    const uncachedTokens = request.numPromptTokens - cachedTokens;
    const prefillMs = (uncachedTokens + worker.numQueuedPrefillTokens) / worker.prefillTokensPerMs;
    const bytesPerMs = worker.sameHostAsDecode ? params.sameHostBytesPerMs : params.crossHostBytesPerMs;
    const transferMs = transferBytes / bytesPerMs;
    return {
      workerId: worker.workerId,
      address: worker.grpcAddress,
      cost: prefillMs + transferMs,
      terms: {
        matchedBlocks: depth,
        cachedTokens,
        uncachedTokens,
        queuedPrefillTokens: worker.numQueuedPrefillTokens,
        prefillTokensPerMs: worker.prefillTokensPerMs,
        prefillMs,
        transferBytes,
        transferMs,
        sameHost: worker.sameHostAsDecode ? 1 : 0,
      },
    };
  });
  const considered: Considered = { threshold: params.disaggThreshold, numUncachedOnDecode, candidates };
  if (numUncachedOnDecode < params.disaggThreshold) {
    return {
      type: 'local',
      reason: `${numUncachedOnDecode} prompt tokens uncached on the decode worker < --disagg-threshold ${params.disaggThreshold}`,
      ...considered,
    };
  }
  const best = pickCheapest(sorted, candidates, params);
  return {
    type: 'remote',
    workerId: best.workerId,
    address: best.address,
    numUncachedTokens: best.terms.uncachedTokens ?? request.numPromptTokens,
    ...considered,
  };
}

function pickCheapest(
  workers: readonly PrefillWorkerView[],
  candidates: readonly PrefillCandidateRecord[],
  params: PrefillChoiceParams,
): PrefillCandidateRecord {
  let bestCost = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) bestCost = Math.min(bestCost, candidate.cost);
  const limit =
    bestCost + Math.max(Math.abs(bestCost) * params.tieRelativeTolerance, params.tieAbsoluteToleranceMs);
  let chosen = -1;
  candidates.forEach((candidate, i) => {
    if (candidate.cost > limit) return;
    if (chosen === -1 || isBetter(i, chosen)) chosen = i;
  });
  return candidates[chosen]!;

  function isBetter(i: number, than: number): boolean {
    const a = candidates[i]!;
    const b = candidates[than]!;
    const cachedA = a.terms.cachedTokens ?? 0;
    const cachedB = b.terms.cachedTokens ?? 0;
    if (cachedA !== cachedB) return cachedA > cachedB;
    const queuedA = workers[i]!.numQueuedPrefillTokens;
    const queuedB = workers[than]!.numQueuedPrefillTokens;
    if (queuedA !== queuedB) return queuedA < queuedB;
    if (workers[i]!.lastPickedSeq !== workers[than]!.lastPickedSeq)
      return workers[i]!.lastPickedSeq < workers[than]!.lastPickedSeq;
    if (a.cost !== b.cost) return a.cost < b.cost;
    return a.workerId < b.workerId; // candidates are in workerId order: never reached with equal ids
  }
}
