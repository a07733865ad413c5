// In-batch prefix sharing: a waiting sequence whose prompt shares full pages with a running
// sequence that has not computed them yet (and the cache lacks them) waits for those pages to be
// inserted, then matches them instead of computing them again.
// Contract: a pure check, re-run every step against the running list; it holds nothing, so an
// aborted or preempted holder (no longer running) holds no one, and neither does a remote
// prefill in flight (its pages enter the cache only when it settles).

import type { Sequence } from './sequence.ts';
import type { SequencePages } from './sequence-pages.ts';

/**
 * True while a running sequence is still computing full pages of `seq`'s prefix that the cache
 * lacks; `seq` then stays queued without blocking the sequences behind it. False without a cache.
 */
export function awaitsSharedPrefix(
  seq: Sequence,
  running: readonly Sequence[],
  pages: SequencePages,
): boolean {
  if (pages.cache === null) return false;
  const size = pages.pageSize;
  const maxPages = Math.floor((seq.tokenIds.length - 1) / size);
  if (maxPages === 0) return false;
  let numCachedTokens = -1; // computed once, only when some running sequence shares a page
  for (const other of running) {
    if (other.state.namespace !== seq.state.namespace || other.remote?.status === 'pending') continue;
    const numComputedPages = Math.floor(other.numComputedTokens / size);
    if (numComputedPages >= maxPages) continue; // it already inserted everything we could share
    const numCommonPages = commonPages(seq, other, maxPages, size);
    if (numCommonPages <= numComputedPages) continue; // nothing it has yet to compute is ours
    if (numCachedTokens === -1) numCachedTokens = pages.cachedLength(seq);
    if (numCachedTokens < numCommonPages * size) return true;
  }
  return false;
}

/** Full pages (up to maxPages) on which two sequences' tokens agree. */
function commonPages(seq: Sequence, other: Sequence, maxPages: number, pageSize: number): number {
  const limit = Math.min(maxPages * pageSize, other.tokenIds.length);
  const a = seq.tokenIds;
  const b = other.tokenIds;
  let i = 0;
  while (i < limit && a[i] === b[i]) i++;
  return Math.floor(i / pageSize);
}
