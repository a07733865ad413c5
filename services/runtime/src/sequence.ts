// One choice of one request as the scheduler sees it: its tokens, how many have KV in its pages,
// and the pages it holds. A request with n choices has n sequences sharing one RequestState.

import type { FinishReason, GenerateRequest, TokenChunk } from './engine.ts';
import type { SamplingParams } from './executor-port.ts';
import type { RadixNode } from './radix-cache.ts';

export type SequenceStatus = 'waiting' | 'running' | 'finished';

export interface RequestState {
  readonly request: GenerateRequest;
  readonly namespace: string;
  readonly sequences: Sequence[];
  /** Receives every chunk of every choice, in order; `finishReason` marks a choice's last one. */
  readonly emit: (chunk: TokenChunk) => void;
  /** Called once when every choice has finished (after its last chunk). */
  readonly onDone: (error: unknown) => void;
  numFinished: number;
}

export class Sequence {
  readonly state: RequestState;
  readonly choiceIndex: number;
  readonly sampling: SamplingParams;
  /** Prompt then generated tokens. */
  readonly tokenIds: number[];
  readonly numPromptTokens: number;
  /** Choice 0 of the same request; choices > 0 reuse its prompt pages (null for choice 0). */
  readonly forkParent: Sequence | null;
  /** Admission order, for FCFS and for picking the newest sequence to preempt. */
  readonly arrivalIndex: number;

  status: SequenceStatus = 'waiting';
  /** Tokens whose KV is in pageTable's pages (positions [0, numComputedTokens)). */
  numComputedTokens = 0;
  /** Pages covering the sequence's positions, in order; the sequence holds one reference on each. */
  pageTable: number[] = [];
  /** pageTable as the executor reads it; entries [0, numSyncedPages) are current. Reused across steps. */
  pageTableBuffer = new Int32Array(8);
  numSyncedPages = 0;
  /** Deepest radix node this sequence keeps locked (its cached prefix), or null. */
  lockedNode: RadixNode | null = null;
  /** Full pages of this sequence already offered to the radix cache. */
  numInsertedPages = 0;
  /** Prompt tokens served from the prefix cache at first admission; null before admission. */
  numCachedTokens: number | null = null;
  numPreemptions = 0;
  finishReason: FinishReason | null = null;

  constructor(state: RequestState, choiceIndex: number, forkParent: Sequence | null, arrivalIndex: number) {
    const request = state.request;
    this.state = state;
    this.choiceIndex = choiceIndex;
    this.forkParent = forkParent;
    this.arrivalIndex = arrivalIndex;
    this.tokenIds = [...request.promptTokenIds];
    this.numPromptTokens = request.promptTokenIds.length;
    const seed = request.sampling.seed;
    this.sampling =
      seed === null || choiceIndex === 0
        ? request.sampling
        : { ...request.sampling, seed: seed + choiceIndex };
  }

  get numOutputTokens(): number {
    return this.tokenIds.length - this.numPromptTokens;
  }

  /** Tokens still to run through the model before the next sample. */
  get numPendingTokens(): number {
    return this.tokenIds.length - this.numComputedTokens;
  }

  get isPrefilling(): boolean {
    return this.numPendingTokens > 1;
  }
}
