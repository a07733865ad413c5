// The pages sequences hold, against the pool (PageAllocator) and the prefix cache (RadixCache):
// reservation at admission, inserts into the cache as full pages fill, release on the way out.
// Contract (who frees what): reservePages() gives a sequence one allocator reference on every page
// of its pageTable and, when it matched a cached prefix, one lock on its lockedNode;
// cacheComputedPages() moves that lock to the deepest node of its inserted prefix (the tree takes
// its own reference on each inserted page); releasePages() drops the sequence's references and
// lock after offering its computed full pages to the cache. Every way out of running (finish,
// abort, preemption, a settled remote prefill, releasePrefill) goes through releasePages().

import type { KvEventLog } from './kv-events.ts';
import { PageAllocator } from './page-allocator.ts';
import { RadixCache } from './radix-cache.ts';
import type { Sequence } from './sequence.ts';

export interface SequencePagesOptions {
  numPages: number;
  pageSize: number;
  enablePrefixCache: boolean;
  /** Headroom checked (not allocated) at admission beyond the sequence's own pages. */
  decodeReserveTokens: number;
  events: KvEventLog;
  /** Where evictions are counted (the scheduler's counters). */
  evictions: { numEvictedPages: number };
}

export class SequencePages {
  readonly allocator: PageAllocator;
  /** null when the prefix cache is off. */
  readonly cache: RadixCache | null;
  readonly pageSize: number;
  private readonly decodeReserveTokens: number;
  private readonly evictions: { numEvictedPages: number };

  constructor(options: SequencePagesOptions) {
    this.pageSize = options.pageSize;
    this.decodeReserveTokens = options.decodeReserveTokens;
    this.evictions = options.evictions;
    this.allocator = new PageAllocator(options.numPages);
    this.cache = options.enablePrefixCache
      ? new RadixCache({ pageSize: options.pageSize, allocator: this.allocator, events: options.events })
      : null;
  }

  pagesFor(numTokens: number): number {
    return Math.ceil(numTokens / this.pageSize);
  }

  /** Frees pages (evicting cached ones if needed) until numPages are free. */
  ensureFreePages(numPages: number): boolean {
    const numMissing = numPages - this.allocator.numFreePages;
    if (numMissing > 0 && this.cache !== null) this.evictions.numEvictedPages += this.cache.evict(numMissing);
    return this.allocator.canAllocate(numPages);
  }

  /** Tokens of the sequence's page-aligned prefix already in the radix cache (0 without one). */
  cachedLength(seq: Sequence): number {
    if (this.cache === null) return 0;
    return this.cache.matchLength(seq.state.namespace, seq.tokenIds, seq.tokenIds.length - 1);
  }

  /** Full prompt pages a fork shares with its parent (the last prompt token is always its own). */
  sharedPromptTokens(seq: Sequence): number {
    return Math.floor((seq.numPromptTokens - 1) / this.pageSize) * this.pageSize;
  }

  /**
   * Admission: reuse cached (or the parent's) pages, allocate the rest of the sequence's pages,
   * and set pageTable, lockedNode, numInsertedPages and numComputedTokens (the reused prefix).
   * False, holding nothing, when the pool cannot cover the pages plus the decode headroom.
   */
  reservePages(seq: Sequence): boolean {
    const numTokens = seq.tokenIds.length;
    let sharedPages: number[] = [];
    let lockedNode = null;
    if (this.cache !== null) {
      const match = this.cache.match(seq.state.namespace, seq.tokenIds, numTokens - 1);
      if (match.pages.length > 0) {
        lockedNode = match.node;
        this.cache.lock(lockedNode);
      }
      sharedPages = match.pages;
    } else if (seq.forkParent !== null && seq.forkParent.status === 'running') {
      sharedPages = seq.forkParent.pageTable.slice(0, this.sharedPromptTokens(seq) / this.pageSize);
    }
    const numSeqPages = this.pagesFor(numTokens);
    const numNewPages = numSeqPages - sharedPages.length;
    const numLeft = seq.state.request.maxTokens - seq.numOutputTokens;
    const numReserveTokens = Math.min(this.decodeReserveTokens, numLeft);
    const numReservePages = Math.min(
      this.pagesFor(numTokens + numReserveTokens) - numSeqPages,
      this.allocator.numPages - numSeqPages,
    );
    const numAvailable = this.allocator.numFreePages + (this.cache?.numEvictablePages ?? 0);
    if (numAvailable < numNewPages + numReservePages || !this.ensureFreePages(numNewPages)) {
      if (lockedNode !== null) this.cache!.unlock(lockedNode);
      return false;
    }
    for (const page of sharedPages) this.allocator.retain(page);
    seq.lockedNode = lockedNode;
    seq.numInsertedPages = lockedNode === null ? 0 : sharedPages.length;
    seq.numComputedTokens = sharedPages.length * this.pageSize;
    seq.pageTable = sharedPages;
    this.allocator.allocate(numNewPages, seq.pageTable);
    return true;
  }

  /** Offers the sequence's computed full pages to the prefix cache and keeps their path locked. */
  cacheComputedPages(seq: Sequence): void {
    const cache = this.cache;
    if (cache === null) return;
    const numFullPages = Math.floor(seq.numComputedTokens / this.pageSize);
    if (numFullPages <= seq.numInsertedPages) return;
    const from = seq.lockedNode === null ? null : { node: seq.lockedNode, numPages: seq.numInsertedPages };
    const node = cache.insert(
      seq.state.namespace,
      seq.tokenIds,
      seq.pageTable,
      numFullPages,
      from,
      (index, cached) => {
        // Same tokens computed twice (concurrent identical prefixes): use the cached page, free ours.
        this.allocator.retain(cached);
        this.allocator.release(seq.pageTable[index]!);
        seq.pageTable[index] = cached;
        seq.numSyncedPages = Math.min(seq.numSyncedPages, index);
      },
    );
    if (node === seq.lockedNode) {
      seq.numInsertedPages = numFullPages;
      return;
    }
    cache.lock(node);
    if (seq.lockedNode !== null) cache.unlock(seq.lockedNode);
    seq.lockedNode = node;
    seq.numInsertedPages = numFullPages;
  }

  /** Caches the computed full pages, then drops every page reference and the lock; resets the KV state. */
  releasePages(seq: Sequence): void {
    this.cacheComputedPages(seq);
    for (const page of seq.pageTable) this.allocator.release(page);
    if (seq.lockedNode !== null) this.cache!.unlock(seq.lockedNode);
    seq.pageTable = [];
    seq.numSyncedPages = 0;
    seq.lockedNode = null;
    seq.numComputedTokens = 0;
    seq.numInsertedPages = 0;
  }
}
