import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blockHashes } from '@tandem/tokenizer';
import { toBlockKeys } from '../src/kv/block-keys.ts';
import { KvIndex } from '../src/kv/kv-index.ts';

const pageSize = 4;
const prompt = Array.from({ length: 20 }, (_, i) => 100 + i); // 5 full pages

function keysOf(tokenIds: number[]): Uint32Array {
  return toBlockKeys(blockHashes('', tokenIds, pageSize));
}

test('match depth follows the chained prefix each worker holds', () => {
  const index = new KvIndex({ optimisticTtlMs: 1000 });
  const keys = keysOf(prompt);
  index.stored('a', keys.subarray(0, 2 * 5));
  index.stored('b', keys.subarray(0, 2 * 2));
  const depths = new Uint32Array(32);
  const mask = [index.slotOf('a'), index.slotOf('b'), index.slotOf('c')];
  index.matchDepths(keys, mask, depths);
  assert.equal(depths[index.slotOf('a')], 5);
  assert.equal(depths[index.slotOf('b')], 2);
  assert.equal(depths[index.slotOf('c')], 0);

  index.removed('a', keys.subarray(2 * 3, 2 * 4)); // evict page 3: a now matches 3 pages
  index.matchDepths(keys, mask, depths);
  assert.equal(depths[index.slotOf('a')], 3);

  index.cleared('b');
  index.matchDepths(keys, mask, depths);
  assert.equal(depths[index.slotOf('b')], 0);
  assert.equal(index.numWorkerBlocks('a'), 4);

  index.removeWorker('a');
  assert.equal(index.numBlocks, 0);
  assert.equal(index.hasWorker('a'), false);
});

test('optimistic inserts count until they expire, and an event confirms them for good', () => {
  const index = new KvIndex({ optimisticTtlMs: 1000 });
  const keys = keysOf(prompt);
  const depths = new Uint32Array(32);
  const slot = index.slotOf('w');
  index.insertOptimistic('w', keys, 10_000);
  index.matchDepths(keys, [slot], depths);
  assert.equal(depths[slot], 5);
  index.stored('w', keys.subarray(0, 4)); // two pages confirmed
  index.expire(11_000);
  index.matchDepths(keys, [slot], depths);
  assert.equal(depths[slot], 2);
  assert.equal(index.numPendingBlocks, 0);
});

test('a different namespace gives different blocks', () => {
  const index = new KvIndex({ optimisticTtlMs: 1000 });
  index.stored('w', toBlockKeys(blockHashes('tenant-a', prompt, pageSize)));
  const depths = new Uint32Array(32);
  index.matchDepths(keysOf(prompt), [index.slotOf('w')], depths);
  assert.equal(depths[index.slotOf('w')], 0);
});

test('a cluster of 100 workers is indexed: every bank of 32 slots matches on its own', () => {
  const index = new KvIndex({ optimisticTtlMs: 1000 });
  const keys = keysOf(prompt);
  // Worker i holds the first i % 6 pages (0..5), confirmed for even i, optimistic for odd i.
  for (let i = 0; i < 100; i++) {
    assert.equal(index.slotOf(`w${i}`), i);
    const held = keys.subarray(0, 2 * (i % 6));
    if (i % 2 === 0) index.stored(`w${i}`, held);
    else index.insertOptimistic(`w${i}`, held, 0);
  }
  assert.equal(index.slotCapacity, 100);
  const slots = Array.from({ length: 100 }, (_, i) => i);
  const depths = new Uint32Array(index.slotCapacity);
  index.matchDepths(keys, slots, depths);
  for (let i = 0; i < 100; i++) assert.equal(depths[i], i % 6, `worker ${i}`);

  // Only the candidates asked for are written.
  depths.fill(7);
  index.matchDepths(keys, [5, 64, 99], depths);
  assert.deepEqual([depths[5], depths[64], depths[99], depths[6]], [5, 4, 3, 7]);

  // A worker that leaves frees its slot for the next one, which starts empty.
  index.removeWorker('w70');
  assert.equal(index.slotOf('newcomer'), 70);
  index.matchDepths(keys, [70], depths);
  assert.equal(depths[70], 0);
  assert.equal(index.numWorkerBlocks('w68'), 68 % 6);
});
