import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BlockDump, Logger } from '@tandem/common';
import { create, type KvEventBatch, KvEventBatchSchema } from '@tandem/proto';
import { toBlockKeys } from '../src/kv/block-keys.ts';
import { KvEventSync } from '../src/kv/kv-event-sync.ts';
import { KvIndex } from '../src/kv/kv-index.ts';

const logger = new Logger({ level: 'error' });

function stored(workerId: string, startedAtMs: bigint, seq: bigint, hashes: bigint[]): KvEventBatch {
  return create(KvEventBatchSchema, {
    workerId,
    startedAtMs,
    events: [
      {
        seq,
        event: {
          case: 'stored',
          value: { namespace: '', blocks: hashes.map((hash) => ({ hash, numTokens: 16 })) },
        },
      },
    ],
  });
}

function depthOf(index: KvIndex, workerId: string, hashes: bigint[]): number {
  const depths = new Uint32Array(32);
  index.matchDepths(toBlockKeys(hashes), [index.slotOf(workerId)], depths);
  return depths[index.slotOf(workerId)]!;
}

test('events apply in order; a gap triggers a dump, buffered events replay after it', async () => {
  const index = new KvIndex({ optimisticTtlMs: 1000 });
  let release: (dump: BlockDump) => void = () => {};
  const dumps: string[] = [];
  const sync = new KvEventSync(
    index,
    (workerId) => {
      dumps.push(workerId);
      return new Promise((resolve) => {
        release = resolve;
      });
    },
    logger,
  );
  sync.onBatch(stored('w', 5n, 1n, [1n]));
  assert.equal(depthOf(index, 'w', [1n]), 1);
  sync.onBatch(stored('w', 5n, 3n, [3n])); // seq 2 was lost
  assert.deepEqual(dumps, ['w']);
  sync.onBatch(stored('w', 5n, 4n, [4n])); // buffered while the dump is in flight
  release({
    workerId: 'w',
    startedAtMs: 5n,
    seq: 3n,
    blocks: [1n, 2n, 3n].map((hash) => ({ namespace: '', hash, parentHash: null })),
  });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(sync.seqOf('w'), 4n);
  assert.equal(depthOf(index, 'w', [1n, 2n, 3n, 4n]), 4);
});

test('a restarted worker (new incarnation at seq 1) starts from an empty cache', () => {
  const index = new KvIndex({ optimisticTtlMs: 1000 });
  const sync = new KvEventSync(index, () => Promise.reject(new Error('no dump expected')), logger);
  sync.onBatch(stored('w', 5n, 1n, [1n, 2n]));
  sync.onBatch(stored('w', 9n, 1n, [7n]));
  assert.equal(depthOf(index, 'w', [1n]), 0);
  assert.equal(depthOf(index, 'w', [7n]), 1);
  assert.equal(sync.seqOf('w'), 1n);
});

test('a load report ahead of the index triggers a resync; one at seq 0 adopts the incarnation', async () => {
  const index = new KvIndex({ optimisticTtlMs: 1000 });
  let numDumps = 0;
  const sync = new KvEventSync(
    index,
    async () => {
      numDumps++;
      return {
        workerId: 'w',
        startedAtMs: 5n,
        seq: 2n,
        blocks: [{ namespace: '', hash: 9n, parentHash: null }],
      };
    },
    logger,
  );
  sync.onWorkerSeq('w', 0n, 5n);
  assert.equal(numDumps, 0);
  assert.equal(sync.isSynced('w'), true);
  sync.onWorkerSeq('w', 2n, 5n);
  assert.equal(numDumps, 1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(depthOf(index, 'w', [9n]), 1);
  sync.onWorkerSeq('w', 2n, 5n);
  assert.equal(numDumps, 1);
});
