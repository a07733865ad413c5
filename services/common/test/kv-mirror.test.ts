// KvBlockMirror's sequence logic without sockets (the worker's tests cover it over real NATS).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KvBlockMirror } from '@tandem/common';
import { create, type KvEventBatch, KvEventBatchSchema, type MessageInitShape } from '@tandem/proto';

type EventInit = NonNullable<MessageInitShape<typeof KvEventBatchSchema>['events']>[number];

function batch(startedAtMs: bigint, events: EventInit[]): KvEventBatch {
  return create(KvEventBatchSchema, { workerId: 'w', startedAtMs, events });
}

const stored = (seq: bigint, hash: bigint, parentHash?: bigint): EventInit => ({
  seq,
  event: {
    case: 'stored',
    value: {
      namespace: '',
      blocks: [{ hash, numTokens: 16, ...(parentHash === undefined ? {} : { parentHash }) }],
    },
  },
});
const removed = (seq: bigint, hash: bigint): EventInit => ({
  seq,
  event: { case: 'removed', value: { namespace: '', hashes: [hash] } },
});

test('applies a sequence from 1, skips old events, stops at a gap', () => {
  const mirror = new KvBlockMirror('w');
  assert.deepEqual(mirror.apply(batch(5n, [stored(1n, 10n), stored(2n, 11n, 10n)])), {
    type: 'applied',
    numEvents: 2,
  });
  assert.equal(mirror.size, 2);
  assert.equal(mirror.blocks().find((b) => b.hash === 11n)?.parentHash, 10n);
  // A replayed event (seq <= current) changes nothing.
  assert.deepEqual(mirror.apply(batch(5n, [stored(2n, 99n)])), { type: 'applied', numEvents: 0 });
  assert.equal(mirror.has('', 99n), false);
  assert.deepEqual(mirror.apply(batch(5n, [removed(3n, 10n)])), { type: 'applied', numEvents: 1 });
  assert.equal(mirror.has('', 10n), false);
  const gap = mirror.apply(batch(5n, [stored(5n, 12n)]));
  assert.deepEqual(gap, { type: 'gap', expectedSeq: 4n, receivedSeq: 5n, restarted: false });
  assert.equal(mirror.has('', 12n), false);
  assert.equal(mirror.seq, 3n);
});

test('a first batch that does not start at 1 is a gap; a dump resets; a new incarnation is a gap', () => {
  const mirror = new KvBlockMirror('w');
  assert.equal(mirror.apply(batch(5n, [stored(7n, 1n)])).type, 'gap');
  mirror.reset({
    workerId: 'w',
    startedAtMs: 5n,
    seq: 7n,
    blocks: [{ namespace: '', hash: 1n, parentHash: null }],
  });
  assert.deepEqual(mirror.apply(batch(5n, [stored(7n, 1n), stored(8n, 2n, 1n)])), {
    type: 'applied',
    numEvents: 1,
  });
  assert.equal(mirror.size, 2);
  assert.equal(mirror.isBehind(8n, 5n), false);
  assert.equal(mirror.isBehind(9n, 5n), true);
  assert.equal(mirror.isBehind(1n, 6n), true);
  const restarted = mirror.apply(batch(6n, [stored(1n, 3n)]));
  assert.equal(restarted.type === 'gap' && restarted.restarted, true);
});
