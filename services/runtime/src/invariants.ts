// Page bookkeeping checks (tests and the engine's checkInvariants): every page's refcount equals
// its holders, the free list holds exactly the unheld pages, and every radix lock is a holder's
// own cached prefix. Read-only; throws a RangeError naming the first mismatch.

import type { Sequence } from './sequence.ts';
import type { SequencePages } from './sequence-pages.ts';

/**
 * `holders`: every sequence that may hold pages (running, then held and draining ones, in that
 * order); `waiting`: sequences that must hold none.
 */
export function checkPageInvariants(
  pages: SequencePages,
  holders: readonly Sequence[],
  waiting: readonly Sequence[],
): void {
  const { allocator, cache } = pages;
  const expected = new Int32Array(allocator.numPages);
  for (const seq of holders) for (const page of seq.pageTable) expected[page]!++;
  for (const seq of waiting)
    if (seq.pageTable.length > 0) throw new RangeError('waiting sequence holds pages');
  if (cache !== null) for (const page of cache.cachedPages()) expected[page]!++;
  let numHeld = 0;
  for (let page = 0; page < expected.length; page++) {
    if (allocator.refCount(page) !== expected[page]) {
      throw new RangeError(`page ${page}: refcount ${allocator.refCount(page)}, holders ${expected[page]}`);
    }
    if (expected[page]! > 0) numHeld++;
  }
  if (numHeld + allocator.numFreePages !== allocator.numPages) {
    throw new RangeError('free list mismatch');
  }
  if (cache === null) return;
  cache.checkTree();
  cache.checkLocks(holders.flatMap((seq) => (seq.lockedNode === null ? [] : [seq.lockedNode])));
  for (const seq of holders) {
    if (seq.lockedNode === null) continue;
    const path = cache.pathTokens(seq.lockedNode);
    const prefix = seq.tokenIds.slice(0, seq.numInsertedPages * pages.pageSize);
    if (path.length !== prefix.length || path.some((token, i) => token !== prefix[i])) {
      throw new RangeError('a sequence locks a radix path that is not its prefix');
    }
    const cachedPages = cache.pathPages(seq.lockedNode);
    if (cachedPages.some((page, i) => page !== seq.pageTable[i])) {
      throw new RangeError('a sequence keeps its own copy of a cached page');
    }
  }
}
