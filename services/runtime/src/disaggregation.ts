// The scheduler's side of disaggregated prefill (hooks in sequence.ts).
// (a) remote prefill: at admission the reserved pages go to RemotePrefill.fill(); the sequence
//     is skipped by schedule() while the fill is pending, and joins decode with the first token
//     it resolves with (a rejection falls back to a local prefill from the cached prefix).
// (b) prefill-only: the pages are reported as they fill (per step, and per layer while a step
//     runs); after the first token they stay held until releasePrefill().
// Contract (who frees what): a held sequence keeps its page references and radix lock until
// releasePrefill(); a draining one (ended while fill() was pending) keeps them until fill()
// settles, since the remote side may still write into them, and is released then. Held and
// draining sequences are in neither queue, and count as page holders.

import type { FinishReason } from './engine.ts';
import type { SampleOutput } from './executor-port.ts';
import type { ScheduledBatch } from './scheduled-batch.ts';
import type { ComputedPages, FirstToken, RemoteState, Sequence } from './sequence.ts';
import type { SequencePages } from './sequence-pages.ts';

/** What a settled remote prefill needs from the scheduler. */
export interface DisaggregationHost {
  /** Appends the first token as if sampled here; may finish the sequence. */
  appendToken(seq: Sequence, sample: SampleOutput): void;
  /** Work appeared outside schedule(). */
  wake(): void;
}

export class Disaggregation {
  private readonly pages: SequencePages;
  private readonly host: DisaggregationHost;
  /** Finished prefill-only sequences whose pages stay until releasePrefill(). */
  private readonly held = new Map<string, Sequence>();
  /** Ended sequences whose pages a remote prefill may still be writing; freed when it settles. */
  private readonly draining = new Set<Sequence>();

  constructor(pages: SequencePages, host: DisaggregationHost) {
    this.pages = pages;
    this.host = host;
  }

  /** True while some held or draining sequence keeps pages outside the queues. */
  get holdsPages(): boolean {
    return this.held.size > 0 || this.draining.size > 0;
  }

  /** Held, then draining sequences: page holders outside the queues. */
  holders(): Sequence[] {
    return [...this.held.values(), ...this.draining];
  }

  isHeld(requestId: string): boolean {
    return this.held.has(requestId);
  }

  /**
   * A sequence leaves the queues with `reason`: a prefill-only one that computed its prompt keeps
   * its pages (held); any other lets them go. Call before its status becomes 'finished'.
   */
  retire(seq: Sequence, reason: FinishReason): void {
    if (seq.prefillOnly !== null && reason !== 'abort' && seq.status === 'running') {
      this.pages.cacheComputedPages(seq);
      this.held.set(seq.state.request.requestId, seq);
    } else {
      this.letGo(seq);
    }
  }

  /** Releases pages now, or once a remote prefill writing into them settles. */
  letGo(seq: Sequence): void {
    if (seq.remote?.status === 'pending') {
      seq.remote.controller?.abort();
      this.draining.add(seq);
    } else {
      this.pages.releasePages(seq);
    }
  }

  /** Frees a held prefill-only request's pages. False when none are held under this id. */
  releasePrefill(requestId: string): boolean {
    const seq = this.held.get(requestId);
    if (seq === undefined) return false;
    this.held.delete(requestId);
    this.pages.releasePages(seq);
    return true;
  }

  /** Hook (b): reports positions [startPos, numComputedTokens) of a prefill-only sequence. */
  reportComputed(seq: Sequence, startPos: number): void {
    const prefillOnly = seq.prefillOnly;
    if (prefillOnly === null) return;
    const endPos = seq.numComputedTokens;
    const pageTable = seq.pageTable.slice(0, this.pages.pagesFor(endPos));
    prefillOnly.onComputed({ pageTable, startPos, endPos });
  }

  /**
   * The forward pass's per-layer callback for the batch's prefill-only sequences that follow
   * layers (PrefillOnly.onLayerComputed), or null when none does. Valid for that pass only.
   */
  layerListener(batch: ScheduledBatch): ((layer: number) => void) | null {
    const listeners: { seq: Sequence; pages: ComputedPages }[] = [];
    for (const { seq, startPos, numTokens } of batch.items) {
      if (seq.prefillOnly?.onLayerComputed === undefined) continue;
      const endPos = startPos + numTokens;
      listeners.push({
        seq,
        pages: { pageTable: seq.pageTable.slice(0, this.pages.pagesFor(endPos)), startPos, endPos },
      });
    }
    if (listeners.length === 0) return null;
    return (layer) => {
      for (const { seq, pages } of listeners) {
        // Aborted while the pass runs: its pages are about to be released, nothing may read them.
        if (seq.status === 'running') seq.prefillOnly?.onLayerComputed?.(pages, layer);
      }
    };
  }

  /** Hook (a): hands the reserved pages to the remote prefill and waits for its first token. */
  startRemotePrefill(seq: Sequence): void {
    const remote = seq.remote;
    if (remote === null) return;
    const controller = new AbortController();
    remote.status = 'pending';
    remote.controller = controller;
    const reservation = {
      requestId: seq.state.request.requestId,
      pageTable: seq.pageTable.slice(),
      numCachedTokens: seq.numComputedTokens,
      numPromptTokens: seq.numPromptTokens,
    };
    let filled: Promise<FirstToken>;
    try {
      filled = remote.fill(reservation, controller.signal);
    } catch (error) {
      filled = Promise.reject(error);
    }
    filled.then(
      (first) => this.remotePrefillSettled(seq, remote, first),
      () => this.remotePrefillSettled(seq, remote, null),
    );
  }

  private remotePrefillSettled(seq: Sequence, remote: RemoteState, first: FirstToken | null): void {
    remote.status = first === null ? 'failed' : 'done'; // failed: prefill locally from the cached prefix
    remote.controller = null;
    if (this.draining.delete(seq)) {
      this.pages.releasePages(seq);
    } else if (seq.status === 'running' && first !== null) {
      seq.numComputedTokens = seq.tokenIds.length;
      this.host.appendToken(seq, { index: 0, ...first, logits: null, probs: null });
      if (seq.status === 'running') this.pages.cacheComputedPages(seq);
    }
    this.host.wake();
  }
}
