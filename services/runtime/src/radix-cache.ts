// Radix tree over full KV pages (RadixAttention, page granular): a path from a namespace's root
// spells a token prefix; each node owns a run of whole pages. Matches are page aligned, a partial
// match splits a node, nodes on paths in use are locked (lockRef > 0) and never evicted, and
// unlocked leaves are evicted least recently used first when pages are needed.
// Contract: the tree holds one allocator reference per page it stores (retain on insert, release
// on evict). Callers that use matched pages retain them themselves and lock the matched node for
// as long as they use it.

import { blockHash } from '@tandem/tokenizer';
import type { BlockDump, KvEventLog, StoredBlock } from './kv-events.ts';
import type { PageAllocator } from './page-allocator.ts';

export interface RadixNode {
  readonly namespace: string;
  parent: RadixNode | null; // null for a namespace root
  readonly children: Map<string, RadixNode>; // key: pageKey() of the child's first page
  tokenIds: number[]; // [pages.length * pageSize]
  pages: number[]; // page ids, in order
  hashes: bigint[]; // chained block hash of each page
  lockRef: number; // sequences using this node or a descendant
  lastAccess: number; // logical clock, for LRU
}

export interface PrefixMatch {
  node: RadixNode; // deepest matched node (a root when nothing matched)
  pages: number[]; // matched pages, in order
  numTokens: number; // pages.length * pageSize
}

function pageKey(tokenIds: ArrayLike<number>, start: number, pageSize: number): string {
  let key = '';
  for (let i = start; i < start + pageSize; i++) {
    const token = tokenIds[i]!;
    key += String.fromCharCode(token & 0xffff, token >>> 16);
  }
  return key;
}

function pageEquals(
  a: ArrayLike<number>,
  aStart: number,
  b: ArrayLike<number>,
  bStart: number,
  size: number,
): boolean {
  for (let i = 0; i < size; i++) if (a[aStart + i] !== b[bStart + i]) return false;
  return true;
}

export class RadixCache {
  readonly pageSize: number;
  private readonly allocator: PageAllocator;
  private readonly events: KvEventLog;
  private readonly roots = new Map<string, RadixNode>();
  private clock = 0;
  private numPagesCached = 0;
  private numPagesLocked = 0;

  constructor(options: { pageSize: number; allocator: PageAllocator; events: KvEventLog }) {
    this.pageSize = options.pageSize;
    this.allocator = options.allocator;
    this.events = options.events;
  }

  /** Pages held by the tree. */
  get numCachedPages(): number {
    return this.numPagesCached;
  }

  /** Pages the tree could free now (not on a locked path). */
  get numEvictablePages(): number {
    return this.numPagesCached - this.numPagesLocked;
  }

  root(namespace: string): RadixNode {
    let root = this.roots.get(namespace);
    if (root === undefined) {
      root = {
        namespace,
        parent: null,
        children: new Map(),
        tokenIds: [],
        pages: [],
        hashes: [],
        lockRef: 1, // a root is never evicted
        lastAccess: 0,
      };
      this.roots.set(namespace, root);
    }
    return root;
  }

  /** Longest page-aligned cached prefix of tokenIds[0, maxTokens). Splits a partly matched node. */
  match(namespace: string, tokenIds: ArrayLike<number>, maxTokens = tokenIds.length): PrefixMatch {
    const size = this.pageSize;
    const maxPages = Math.floor(Math.min(maxTokens, tokenIds.length) / size);
    const pages: number[] = [];
    let node = this.root(namespace);
    const now = ++this.clock;
    while (pages.length < maxPages) {
      const child = node.children.get(pageKey(tokenIds, pages.length * size, size));
      if (child === undefined) break;
      const numMatched = this.countMatchingPages(child, tokenIds, pages.length, maxPages);
      const matched = numMatched < child.pages.length ? this.split(child, numMatched) : child;
      matched.lastAccess = now;
      for (const page of matched.pages) pages.push(page);
      node = matched;
      if (matched !== child) break;
    }
    return { node, pages, numTokens: pages.length * size };
  }

  /** Length of the cached page-aligned prefix, without touching the tree (for queue ordering). */
  matchLength(namespace: string, tokenIds: ArrayLike<number>, maxTokens = tokenIds.length): number {
    const size = this.pageSize;
    const maxPages = Math.floor(Math.min(maxTokens, tokenIds.length) / size);
    let numPages = 0;
    let node = this.roots.get(namespace);
    while (node !== undefined && numPages < maxPages) {
      const child: RadixNode | undefined = node.children.get(pageKey(tokenIds, numPages * size, size));
      if (child === undefined) break;
      const numMatched = this.countMatchingPages(child, tokenIds, numPages, maxPages);
      numPages += numMatched;
      if (numMatched < child.pages.length) break;
      node = child;
    }
    return numPages * size;
  }

  /**
   * Stores the first numPages pages of a sequence (tokenIds[0, numPages * pageSize) whose KV is in
   * `pages`). Where the tree already holds other pages for the same tokens (computed twice
   * concurrently), onCached(index, cachedPage) lets the caller switch to the cached page and free
   * its copy; new pages are retained by the tree and published. Returns the node that ends
   * exactly at the inserted prefix, for the caller to lock. The caller's `from` leaf, when only
   * the caller locks it, is extended in place rather than given a one-page child per decode page.
   */
  insert(
    namespace: string,
    tokenIds: ArrayLike<number>,
    pages: ArrayLike<number>,
    numPages: number,
    from: { node: RadixNode; numPages: number } | null = null,
    onCached: ((pageIndex: number, cachedPage: number) => void) | null = null,
  ): RadixNode {
    const size = this.pageSize;
    // `from`: a node the caller knows spells tokenIds[0, from.numPages * pageSize) (its locked
    // node), so a growing sequence inserts each new page without walking from the root.
    let node = from?.node ?? this.root(namespace);
    const now = ++this.clock;
    let numDone = from?.numPages ?? 0;
    while (numDone < numPages) {
      const child = node.children.get(pageKey(tokenIds, numDone * size, size));
      if (child === undefined) {
        // Only the caller's own locked leaf may grow in place: another sequence's locked node
        // must keep ending where that sequence believes it ends.
        const extend = from !== null && node === from.node && node.lockRef === 1 && node.children.size === 0;
        node = this.addLeaf(node, tokenIds, pages, numDone, numPages, now, extend);
        break;
      }
      const numMatched = this.countMatchingPages(child, tokenIds, numDone, numPages);
      const matched = numMatched < child.pages.length ? this.split(child, numMatched) : child;
      matched.lastAccess = now;
      if (onCached !== null) {
        for (let j = 0; j < numMatched; j++) {
          if (matched.pages[j] !== pages[numDone + j]) onCached(numDone + j, matched.pages[j]!);
        }
      }
      numDone += numMatched;
      node = matched;
    }
    return node;
  }

  lock(node: RadixNode): void {
    for (let n: RadixNode | null = node; n !== null; n = n.parent) {
      if (n.lockRef === 0) this.numPagesLocked += n.pages.length;
      n.lockRef++;
    }
  }

  unlock(node: RadixNode): void {
    for (let n: RadixNode | null = node; n !== null; n = n.parent) {
      n.lockRef--;
      if (n.lockRef === 0) this.numPagesLocked -= n.pages.length;
      if (n.lockRef < 0) throw new RangeError('radix node unlocked more often than locked');
    }
  }

  /** Frees at least numPages pages if that many are evictable (whole leaves, LRU first). */
  evict(numPages: number): number {
    const heap = new LeafHeap();
    for (const root of this.roots.values()) {
      const stack = [root];
      while (stack.length > 0) {
        const node = stack.pop()!;
        if (node.children.size === 0) {
          if (node.lockRef === 0) heap.push(node);
        } else {
          for (const child of node.children.values()) stack.push(child);
        }
      }
    }
    let numEvicted = 0;
    while (numEvicted < numPages) {
      const leaf = heap.pop();
      if (leaf === null) break;
      numEvicted += leaf.pages.length;
      const parent = this.removeLeaf(leaf);
      if (parent.parent !== null && parent.children.size === 0 && parent.lockRef === 0) heap.push(parent);
    }
    return numEvicted;
  }

  /** Every page the tree holds (tests and invariant checks). */
  *cachedPages(): Generator<number> {
    for (const root of this.roots.values()) {
      const stack = [root];
      while (stack.length > 0) {
        const node = stack.pop()!;
        yield* node.pages;
        for (const child of node.children.values()) stack.push(child);
      }
    }
  }

  /**
   * Structural check (tests): child keys, hash chains recomputed from tokens, lock counts and page
   * totals. Throws a RangeError naming the first inconsistency.
   */
  checkTree(): void {
    let numCached = 0;
    let numLocked = 0;
    for (const root of this.roots.values()) {
      const stack: RadixNode[] = [root];
      while (stack.length > 0) {
        const node = stack.pop()!;
        numCached += node.pages.length;
        if (node.lockRef > 0) numLocked += node.pages.length;
        if (
          node.tokenIds.length !== node.pages.length * this.pageSize ||
          node.hashes.length !== node.pages.length
        ) {
          throw new RangeError('radix node sizes disagree');
        }
        let parentHash = node.parent === null ? null : (node.parent.hashes.at(-1) ?? null);
        for (let page = 0; page < node.pages.length; page++) {
          const hash = blockHash(
            parentHash,
            node.namespace,
            node.tokenIds,
            page * this.pageSize,
            (page + 1) * this.pageSize,
          );
          if (hash !== node.hashes[page]) throw new RangeError('radix hash chain broken');
          parentHash = hash;
        }
        let childLocks = 0;
        for (const [key, child] of node.children) {
          if (child.parent !== node || key !== pageKey(child.tokenIds, 0, this.pageSize)) {
            throw new RangeError('radix child link broken');
          }
          childLocks += child.lockRef;
          stack.push(child);
        }
        if (node.parent !== null && node.lockRef < childLocks)
          throw new RangeError('radix lock counts broken');
      }
    }
    if (numCached !== this.numPagesCached || numLocked !== this.numPagesLocked) {
      throw new RangeError(
        `radix totals: ${numCached}/${this.numPagesCached} cached, ${numLocked}/${this.numPagesLocked} locked`,
      );
    }
  }

  /** Checks that lockRefs are exactly the locks of these holders' nodes (tests). */
  checkLocks(lockedNodes: readonly RadixNode[]): void {
    const expected = new Map<RadixNode, number>();
    for (const node of lockedNodes) {
      for (let n: RadixNode | null = node; n !== null; n = n.parent)
        expected.set(n, (expected.get(n) ?? 0) + 1);
    }
    for (const root of this.roots.values()) {
      const stack: RadixNode[] = [root];
      while (stack.length > 0) {
        const node = stack.pop()!;
        const want = (expected.get(node) ?? 0) + (node.parent === null ? 1 : 0);
        if (node.lockRef !== want) throw new RangeError(`radix lockRef ${node.lockRef}, holders ${want}`);
        for (const child of node.children.values()) stack.push(child);
      }
    }
  }

  /** The pages of a node's path, root first (tests). */
  pathPages(node: RadixNode): number[] {
    const parts: number[][] = [];
    for (let n: RadixNode | null = node; n !== null; n = n.parent) parts.push(n.pages);
    return parts.reverse().flat();
  }

  /** The tokens a node's path spells, root first (tests). */
  pathTokens(node: RadixNode): number[] {
    const parts: number[][] = [];
    for (let n: RadixNode | null = node; n !== null; n = n.parent) parts.push(n.tokenIds);
    return parts.reverse().flat();
  }

  /** Every cached block (what a KV-event subscriber should hold after event `seq`). */
  dumpBlocks(): BlockDump {
    const blocks: BlockDump['blocks'] = [];
    for (const root of this.roots.values()) {
      const stack: RadixNode[] = [root];
      while (stack.length > 0) {
        const node = stack.pop()!;
        let parentHash = node.parent === null ? null : (node.parent.hashes.at(-1) ?? null);
        for (const hash of node.hashes) {
          blocks.push({ namespace: node.namespace, hash, parentHash });
          parentHash = hash;
        }
        for (const child of node.children.values()) stack.push(child);
      }
    }
    return { seq: this.events.seq, blocks };
  }

  private countMatchingPages(
    child: RadixNode,
    tokenIds: ArrayLike<number>,
    firstPage: number,
    maxPages: number,
  ): number {
    const size = this.pageSize;
    // The first page matched through the child key.
    let numMatched = 1;
    while (
      numMatched < child.pages.length &&
      firstPage + numMatched < maxPages &&
      pageEquals(child.tokenIds, numMatched * size, tokenIds, (firstPage + numMatched) * size, size)
    ) {
      numMatched++;
    }
    return numMatched;
  }

  /** Cuts `node` after its first numPages pages; returns the new upper part (same lock count). */
  private split(node: RadixNode, numPages: number): RadixNode {
    const size = this.pageSize;
    const parent = node.parent!;
    const upper: RadixNode = {
      namespace: node.namespace,
      parent,
      children: new Map(),
      tokenIds: node.tokenIds.slice(0, numPages * size),
      pages: node.pages.slice(0, numPages),
      hashes: node.hashes.slice(0, numPages),
      lockRef: node.lockRef,
      lastAccess: node.lastAccess,
    };
    node.tokenIds = node.tokenIds.slice(numPages * size);
    node.pages = node.pages.slice(numPages);
    node.hashes = node.hashes.slice(numPages);
    node.parent = upper;
    parent.children.set(pageKey(upper.tokenIds, 0, size), upper);
    upper.children.set(pageKey(node.tokenIds, 0, size), node);
    return upper;
  }

  private addLeaf(
    parent: RadixNode,
    tokenIds: ArrayLike<number>,
    pages: ArrayLike<number>,
    firstPage: number,
    endPage: number,
    now: number,
    extend: boolean,
  ): RadixNode {
    if (extend && parent.parent !== null) {
      const blocks = this.appendPages(parent, tokenIds, pages, firstPage, endPage);
      parent.lastAccess = now;
      this.numPagesLocked += blocks.length;
      this.events.stored(parent.namespace, blocks);
      return parent;
    }
    const leaf: RadixNode = {
      namespace: parent.namespace,
      parent,
      children: new Map(),
      tokenIds: [],
      pages: [],
      hashes: [],
      lockRef: 0,
      lastAccess: now,
    };
    const blocks = this.appendPages(leaf, tokenIds, pages, firstPage, endPage, parent.hashes.at(-1) ?? null);
    parent.children.set(pageKey(leaf.tokenIds, 0, this.pageSize), leaf);
    this.events.stored(parent.namespace, blocks);
    return leaf;
  }

  /** Appends pages [firstPage, endPage) of a sequence to `node`, retaining them; returns their blocks. */
  private appendPages(
    node: RadixNode,
    tokenIds: ArrayLike<number>,
    pages: ArrayLike<number>,
    firstPage: number,
    endPage: number,
    firstParentHash: bigint | null = node.hashes.at(-1) ?? null,
  ): StoredBlock[] {
    const size = this.pageSize;
    const blocks: StoredBlock[] = [];
    let parentHash = firstParentHash;
    for (let i = firstPage * size; i < endPage * size; i++) node.tokenIds.push(tokenIds[i]!);
    for (let page = firstPage; page < endPage; page++) {
      const hash = blockHash(parentHash, node.namespace, tokenIds, page * size, (page + 1) * size);
      const pageId = pages[page]!;
      this.allocator.retain(pageId);
      node.pages.push(pageId);
      node.hashes.push(hash);
      blocks.push({ hash, parentHash, numTokens: size });
      parentHash = hash;
    }
    this.numPagesCached += endPage - firstPage;
    return blocks;
  }

  private removeLeaf(leaf: RadixNode): RadixNode {
    const parent = leaf.parent!;
    parent.children.delete(pageKey(leaf.tokenIds, 0, this.pageSize));
    for (const page of leaf.pages) this.allocator.release(page);
    this.numPagesCached -= leaf.pages.length;
    this.events.removed(leaf.namespace, leaf.hashes);
    return parent;
  }
}

/** Min-heap of leaves by lastAccess (oldest first). */
class LeafHeap {
  private readonly items: RadixNode[] = [];

  push(node: RadixNode): void {
    const items = this.items;
    items.push(node);
    let i = items.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (items[up]!.lastAccess <= node.lastAccess) break;
      items[i] = items[up]!;
      i = up;
    }
    items[i] = node;
  }

  pop(): RadixNode | null {
    const items = this.items;
    const top = items[0];
    if (top === undefined) return null;
    const last = items.pop()!;
    if (items.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= items.length) break;
        const right = left + 1;
        const child =
          right < items.length && items[right]!.lastAccess < items[left]!.lastAccess ? right : left;
        if (items[child]!.lastAccess >= last.lastAccess) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}
