// Routing policies are scorers plus a picker (Dynamo's split): scorers turn each candidate into
// cost terms (lower is better) from the inputs they declare; the picker takes the cheapest with
// deterministic ties. Nothing here has side effects: the router applies the choice afterwards
// (optimistic index insert, in-flight counts, last-picked order).
import type { BlockKeys } from '../kv/block-keys.ts';

/** What every policy's candidates have: identity, index slot, page size and pick order. */
export interface Candidate {
  workerId: string;
  /** Its slot in the KV index (-1: none). */
  slot: number;
  /** Tokens per KV page. */
  pageSize: number;
  /** Order of its last pick by this router (0: never). */
  lastPickedSeq: number;
}

/** A worker requests are routed to (unified or decode), as a decision sees it. */
export interface WorkerView extends Candidate {
  /** Requests in flight on it across all router replicas (Redis), plus this router's unsynced. */
  numInflight: number;
  /** Its last load report, or null before the first. */
  load: {
    numWaiting: number;
    numRunning: number;
    numQueuedPrefillTokens: number;
    numRunningTokens: number;
    numFreePages: number;
    numTotalPages: number;
  } | null;
  /**
   * Prompt tokens queued for prefill on it: this router's requests without a first token yet
   * (exact, fresh) plus what its last load report showed beyond those (other replicas' work).
   */
  numQueuedPrefillTokens: number;
  /**
   * Requests past their first token on it (decoding): in-flight across replicas minus this
   * router's requests still waiting for their first token (those are in the prefill term).
   */
  numDecoding: number;
  /** Measured prefill throughput, tokens per millisecond (the router's EWMA of first tokens). */
  prefillTokensPerMs: number;
  /** The step costs the worker fitted over its own steps (its load report), or null. */
  stepCost: StepCostView | null;
}

/** A worker's least-squares fit of its step time (LoadReport.step_cost). */
export interface StepCostView {
  baseMs: number;
  prefillMsPerToken: number;
  decodeMsPerSequence: number;
  rSquared: number;
  rmseMs: number;
  numSteps: number;
  numPrefillSteps: number;
}

/** A prefill worker, as the choice of who computes a decode worker's prompt sees it. */
export interface PrefillWorkerView extends Candidate {
  grpcAddress: string;
  /** This router's prompts sent through it without a first token yet plus others' (load report). */
  numQueuedPrefillTokens: number;
  prefillTokensPerMs: number;
  /** Whether its gRPC host is the decode worker's (loopback transfer). */
  sameHostAsDecode: boolean;
}

/** The prompt a prefill worker is chosen for, and the decode worker it goes to. */
export interface PrefillRequest {
  numPromptTokens: number;
  /** Prompt tokens the decode worker holds (index, leading full pages). */
  numCachedOnDecode: number;
  /** The decode worker's page size and KV bytes per page (all layers, K and V; 0: unknown). */
  decodePageSize: number;
  decodeKvBytesPerPage: number;
}

export interface RoutingRequest {
  requestId: string;
  numPromptTokens: number;
  /** The prompt's full-page block hashes. */
  blockKeys: BlockKeys;
  /** Session-affinity key (x-routing-key / x-session-id header, or the OpenAI `user` field), or null. */
  routingKey: string | null;
}

/** Everything a scorer may read besides the candidates. */
export interface RoutingInputs {
  /** Leading blocks of the prompt each candidate holds (by slot), for scorers that need it. */
  matchDepthBySlot: Uint32Array | null;
  /** Uniform [0, 1), injected and seeded. */
  random: () => number;
}

export type ScorerInput =
  | 'load'
  | 'inflight'
  | 'prefix'
  | 'prefillRate'
  | 'routingKey'
  | 'random'
  | 'pickOrder'
  | 'transfer';

export interface Score {
  cost: number;
  /** The named numbers that made the cost (recorded with the decision). */
  terms: Record<string, number>;
}

/** Turns each candidate into named cost terms (lower is better), from the inputs it declares. */
export interface Scorer<C extends Candidate = WorkerView, R = RoutingRequest> {
  readonly name: string;
  readonly inputs: readonly ScorerInput[];
  score(request: R, candidates: readonly C[], inputs: RoutingInputs): Score[];
}

/** Removes candidates before scoring; returns a reason per excluded worker. */
export interface CandidateFilter<C extends Candidate = WorkerView, R = RoutingRequest> {
  readonly name: string;
  readonly inputs: readonly ScorerInput[];
  exclude(request: R, candidates: readonly C[], inputs: RoutingInputs): Map<string, string>;
}

export interface CandidateRecord {
  workerId: string;
  cost: number | null;
  terms: Record<string, number>;
  /** Why it was not considered, or null. */
  excluded: string | null;
}

export interface Decision {
  requestId: string;
  policy: string;
  numPromptTokens: number;
  numPromptBlocks: number;
  /** Null when no candidate was left. */
  workerId: string | null;
  candidates: CandidateRecord[];
  /** For a request with a session key: where the session was and whether it stayed. */
  session?: SessionOutcome;
}

export interface SessionOutcome {
  key: string;
  /** The worker that served the session last (null: a new session). */
  previousWorkerId: string | null;
  /** sticky: kept on it; new: first request; moved: left it (why in `reason`). */
  outcome: 'sticky' | 'new' | 'moved';
  reason: string | null;
}

export interface Policy {
  readonly name: string;
  /** Whether decisions read the KV index (the router then computes match depths). */
  readonly needsPrefix: boolean;
  decide(request: RoutingRequest, candidates: readonly WorkerView[], inputs: RoutingInputs): Decision;
}
