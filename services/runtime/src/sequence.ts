// One choice of one request as the scheduler sees it: its tokens, how many have KV in its pages,
// and the pages it holds. A request with n choices has n sequences sharing one RequestState.

import { ChoiceConstraint } from './constraint.ts';
import type { FinishReason, GenerateRequest, TokenChunk } from './engine.ts';
import type { SamplingParams } from './executor-port.ts';
import type { RadixNode } from './radix-cache.ts';

export type SequenceStatus = 'waiting' | 'running' | 'finished';

/** Pages reserved for a prompt whose KV someone else (a remote prefill worker) writes. */
export interface PrefillReservation {
  requestId: string;
  /** Pages for positions [0, numPromptTokens), in order. */
  pageTable: readonly number[];
  /** Positions [0, numCachedTokens) already hold KV here (prefix cache); write the rest. */
  numCachedTokens: number;
  numPromptTokens: number;
}

/** The token sampled after the prompt, as the prefill side produced it. */
export interface FirstToken {
  tokenId: number;
  logprob: number;
  topLogprobs: { tokenId: number; logprob: number }[];
}

/**
 * Hook (a): the prompt's KV is written into the reserved pages by someone else.
 * Contract: fill() settles only once nothing writes into the pages any more (the engine frees
 * them after that, also when the request was aborted meanwhile; `signal` says so). Resolving
 * joins decode with the first token; rejecting falls back to a local prefill.
 */
export interface RemotePrefill {
  fill(reservation: PrefillReservation, signal: AbortSignal): Promise<FirstToken>;
}

/** One prefill step's result: KV of positions [startPos, endPos) is in these pages. */
export interface ComputedPages {
  pageTable: readonly number[]; // pages for positions [0, endPos)
  startPos: number;
  endPos: number;
}

/**
 * Hook (b): a prefill-only request. onComputed reports the prompt's pages as they fill (the
 * first report covers the cached prefix); after the first token the pages stay held until
 * Engine.releasePrefill(requestId). onLayerComputed, when given, reports each layer of a step's
 * pages while the step's later layers still compute (every layer before that step's
 * onComputed); it must not throw.
 */
export interface PrefillOnly {
  onComputed(pages: ComputedPages): void;
  onLayerComputed?(pages: ComputedPages, layer: number): void;
}

export interface RemoteState {
  readonly fill: RemotePrefill['fill'];
  status: 'idle' | 'pending' | 'failed' | 'done';
  controller: AbortController | null;
}

export interface RequestState {
  readonly request: GenerateRequest;
  readonly namespace: string;
  readonly sequences: Sequence[];
  /** Receives every chunk of every choice, in order; `finishReason` marks a choice's last one. */
  readonly emit: (chunk: TokenChunk) => void;
  /** Called once when every choice has finished (after its last chunk). */
  readonly onDone: (error: unknown) => void;
  /** Called once when choice 0 is first admitted (holds pages), with its cached prompt tokens. */
  readonly onAdmitted: ((numCachedTokens: number) => void) | null;
  numFinished: number;
}

export class Sequence {
  readonly state: RequestState;
  readonly choiceIndex: number;
  readonly sampling: SamplingParams;
  /** Constrained decoding: this choice's matcher and mask (null: unconstrained). */
  readonly constraint: ChoiceConstraint | null;
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
  /** Hook (a) state, choice 0 only; null for a local prefill. */
  remote: RemoteState | null = null;
  /** Hook (b); null for an ordinary request. */
  prefillOnly: PrefillOnly | null = null;

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
    this.constraint =
      request.constraint === null ? null : new ChoiceConstraint(request.constraint, this.sampling);
  }

  private promptArray: Int32Array | null = null;
  private outputArray = new Int32Array(0);
  private numOutputInArray = 0;

  /** The prompt as the executor reads it (penalties); built once. */
  promptTokenArray(): Int32Array {
    this.promptArray ??= Int32Array.from(this.tokenIds.slice(0, this.numPromptTokens));
    return this.promptArray;
  }

  /** Generated tokens as the executor reads them: a view of a buffer that only grows. */
  outputTokenArray(): Int32Array {
    const numOutput = this.numOutputTokens;
    if (this.outputArray.length < numOutput) {
      const grown = new Int32Array(Math.max(16, 2 * numOutput));
      grown.set(this.outputArray.subarray(0, this.numOutputInArray));
      this.outputArray = grown;
    }
    for (let i = this.numOutputInArray; i < numOutput; i++)
      this.outputArray[i] = this.tokenIds[this.numPromptTokens + i]!;
    this.numOutputInArray = numOutput;
    return this.outputArray.subarray(0, numOutput);
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
