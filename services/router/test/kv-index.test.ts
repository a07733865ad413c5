import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blockHashes } from '@tandem/runtime';
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
  const mask = (1 << index.slotOf('a')) | (1 << index.slotOf('b')) | (1 << index.slotOf('c'));
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
  index.matchDepths(keys, 1 << slot, depths);
  assert.equal(depths[slot], 5);
  index.stored('w', keys.subarray(0, 4)); // two pages confirmed
  index.expire(11_000);
  index.matchDepths(keys, 1 << slot, depths);
  assert.equal(depths[slot], 2);
  assert.equal(index.numPendingBlocks, 0);
});

test('a different namespace gives different blocks', () => {
  const index = new KvIndex({ optimisticTtlMs: 1000 });
  index.stored('w', toBlockKeys(blockHashes('tenant-a', prompt, pageSize)));
  const depths = new Uint32Array(32);
  index.matchDepths(keysOf(prompt), 1 << index.slotOf('w'), depths);
  assert.equal(depths[index.slotOf('w')], 0);
});

test('a 33rd worker gets no slot and is simply never matched', () => {
  const index = new KvIndex({ optimisticTtlMs: 1000 });
  for (let i = 0; i < 32; i++) assert.equal(index.slotOf(`w${i}`), i);
  assert.equal(index.slotOf('w32'), -1);
  const keys = keysOf(prompt);
  index.stored('w32', keys);
  index.insertOptimistic('w32', keys, 0);
  assert.equal(index.numBlocks, 0);
  index.removeWorker('w3');
  assert.equal(index.slotOf('w32'), 3);
});
