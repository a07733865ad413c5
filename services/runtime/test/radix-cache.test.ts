// Page allocator, radix cache and KV events as units.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { blockHashes } from '@tandem/tokenizer';
import { type KvEvent, KvEventLog } from '../src/kv-events.ts';
import { PageAllocator } from '../src/page-allocator.ts';
import { RadixCache } from '../src/radix-cache.ts';
import { randomTokens, seededRandom } from './helpers.ts';

function setup(numPages: number, pageSize = 4) {
  const allocator = new PageAllocator(numPages);
  const events = new KvEventLog();
  const log: KvEvent[] = [];
  events.subscribe((e) => log.push(e));
  const cache = new RadixCache({ pageSize, allocator, events });
  return { allocator, events, cache, log };
}

/** Stores a sequence as a finished request would: allocate, insert, release its own refs. */
function store(s: ReturnType<typeof setup>, namespace: string, tokens: number[]): number[] {
  const numPages = Math.floor(tokens.length / s.cache.pageSize);
  const pages = s.allocator.allocate(numPages);
  s.cache.insert(namespace, tokens, pages, numPages);
  for (const page of pages) s.allocator.release(page);
  return pages;
}

describe('page allocator', () => {
  test('allocate, retain, release; freed at zero; errors on misuse', () => {
    const allocator = new PageAllocator(4);
    const pages = allocator.allocate(3);
    assert.deepEqual(pages, [0, 1, 2]);
    assert.ok(allocator.canAllocate(1) && !allocator.canAllocate(2));
    assert.throws(() => allocator.allocate(2), { name: 'OutOfPagesError', reason: 'out_of_pages' });
    allocator.retain(1);
    allocator.release(1);
    assert.equal(allocator.numFreePages, 1);
    allocator.release(1);
    assert.equal(allocator.numFreePages, 2);
    assert.throws(() => allocator.release(1), RangeError);
    assert.throws(() => allocator.retain(3), RangeError);
  });
});

describe('radix cache', () => {
  test('page-aligned match, split on partial match, cached token counts', () => {
    const s = setup(32);
    const a = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
    const pagesA = store(s, '', a);
    assert.equal(s.cache.numCachedPages, 3);
    // Shares two pages, differs inside the third: the node splits after page 2.
    const b = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 99, 12, 14];
    const match = s.cache.match('', b);
    assert.equal(match.numTokens, 8);
    assert.deepEqual(match.pages, pagesA.slice(0, 2));
    assert.equal(s.cache.matchLength('', a), 12);
    assert.equal(s.cache.match('', a, 11).numTokens, 8); // capped below the last token
    assert.equal(s.cache.match('other', a).numTokens, 0); // namespaces are separate trees
    store(s, '', b);
    assert.equal(s.cache.numCachedPages, 4);
    assert.equal(s.cache.dumpBlocks().blocks.length, 4);
  });

  test('locked paths are never evicted; LRU leaves go first', () => {
    const s = setup(32);
    const old = store(s, '', [1, 1, 1, 1, 2, 2, 2, 2]);
    const locked = store(s, '', [3, 3, 3, 3, 4, 4, 4, 4]);
    const recent = store(s, '', [5, 5, 5, 5]);
    const lockedMatch = s.cache.match('', [3, 3, 3, 3, 4, 4, 4, 4, 0]);
    s.cache.lock(lockedMatch.node);
    s.cache.match('', [5, 5, 5, 5, 0]); // touch
    assert.equal(s.cache.numEvictablePages, 3);
    assert.equal(s.cache.evict(1), 2); // the oldest leaf, a whole node
    assert.ok(old.every((p) => s.allocator.refCount(p) === 0));
    assert.equal(s.cache.evict(10), 1);
    assert.ok(recent.every((p) => s.allocator.refCount(p) === 0));
    assert.ok(locked.every((p) => s.allocator.refCount(p) === 1));
    assert.equal(s.cache.evict(10), 0);
    s.cache.unlock(lockedMatch.node);
    assert.equal(s.cache.evict(10), 2);
    assert.equal(s.allocator.numFreePages, 32);
    assert.throws(() => s.cache.unlock(lockedMatch.node), RangeError);
  });

  test("a caller's locked leaf grows in place; another sequence's locked leaf never does", () => {
    const s = setup(32);
    const tokens = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const pagesA = s.allocator.allocate(3);
    const leafA = s.cache.insert('', tokens, pagesA, 1);
    s.cache.lock(leafA);
    // B (its own copies of the pages) inserts 3 pages from the root: A's leaf must keep its length.
    const pagesB = s.allocator.allocate(3);
    const nodeB = s.cache.insert('', tokens, pagesB, 3);
    assert.notEqual(nodeB, leafA);
    assert.equal(s.cache.pathTokens(leafA).length, 4);
    assert.equal(s.cache.pathTokens(nodeB).length, 12);
    s.cache.checkTree();
    // A grows from its own locked leaf: same node when only A locks it.
    const other = [1, 2, 3, 4, 50, 60, 70, 80];
    s.cache.unlock(leafA);
    const leafC = s.cache.insert('', other, [pagesA[0]!, pagesA[1]!], 1);
    assert.equal(leafC, leafA);
    s.cache.lock(leafC);
    const grown = s.cache.insert('', other, [pagesA[0]!, pagesA[1]!], 2, { node: leafC, numPages: 1 });
    s.cache.checkTree();
    assert.equal(s.cache.pathTokens(grown).join(), other.join());
  });

  test('replaying the KV events rebuilds the dump exactly, through splits and evictions', () => {
    const s = setup(64);
    const random = seededRandom(5);
    const shared = randomTokens(random, 12, 50);
    const view = new Map<string, bigint | null>();
    let lastSeq = 0;
    s.events.subscribe((event) => {
      assert.equal(event.seq, lastSeq + 1, 'sequence numbers increase by one');
      lastSeq = event.seq;
      if (event.type === 'stored') {
        for (const b of event.blocks) view.set(`${event.namespace}/${b.hash}`, b.parentHash);
      } else if (event.type === 'removed') {
        for (const h of event.hashes)
          assert.ok(view.delete(`${event.namespace}/${h}`), 'removed a known block');
      } else view.clear();
    });
    for (let i = 0; i < 200; i++) {
      const namespace = random() < 0.2 ? 'ns' : '';
      const tokens = [
        ...shared.slice(0, Math.floor(random() * 12)),
        ...randomTokens(random, 1 + Math.floor(random() * 12), 50),
      ];
      const numPages = Math.floor(tokens.length / 4);
      const numMissing = numPages - s.allocator.numFreePages;
      if (numMissing > 0) s.cache.evict(numMissing);
      if (!s.allocator.canAllocate(numPages)) continue;
      store(s, namespace, tokens);
      const dump = s.cache.dumpBlocks();
      assert.equal(dump.seq, lastSeq);
      assert.equal(view.size, dump.blocks.length);
      for (const b of dump.blocks) assert.equal(view.get(`${b.namespace}/${b.hash}`), b.parentHash);
      // The chain in the dump is the router's blockHashes() of the stored prefix.
      const expected = blockHashes(namespace, tokens, 4);
      for (const h of expected) assert.ok(view.has(`${namespace}/${h}`));
    }
    assert.ok(
      s.log.some((e) => e.type === 'removed'),
      'evictions happened',
    );
    assert.equal(s.allocator.numFreePages + s.cache.numEvictablePages, 64);
  });
});
