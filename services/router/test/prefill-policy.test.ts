import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  choosePrefill,
  defaultPrefillPolicyParams,
  type PrefillRequest,
  type PrefillWorkerView,
} from '../src/policy/prefill-policy.ts';

function view(workerId: string, slot: number, extra: Partial<PrefillWorkerView> = {}): PrefillWorkerView {
  return {
    workerId,
    grpcAddress: `127.0.0.1:${5000 + slot}`,
    slot,
    pageSize: 16,
    numQueuedPrefillTokens: 0,
    prefillTokensPerMs: 2,
    lastPickedSeq: 0,
    sameHostAsDecode: true,
    ...extra,
  };
}

const request: PrefillRequest = {
  numPromptTokens: 200,
  numCachedOnDecode: 0,
  decodePageSize: 16,
  decodeKvBytesPerPage: 1_000_000,
};

function depths(bySlot: Record<number, number>): Uint32Array {
  const out = new Uint32Array(32);
  for (const [slot, depth] of Object.entries(bySlot)) out[Number(slot)] = depth;
  return out;
}

test('the prefill worker holding the prefix wins; the record names every cost term', () => {
  const decision = choosePrefill(
    request,
    [view('p-a', 0), view('p-b', 1)],
    depths({ 1: 12 }),
    defaultPrefillPolicyParams,
  );
  assert.equal(decision.type, 'remote');
  if (decision.type !== 'remote') return;
  assert.equal(decision.workerId, 'p-b');
  assert.equal(decision.address, '127.0.0.1:5001');
  assert.equal(decision.numUncachedTokens, 200 - 192);
  const b = decision.candidates.find((c) => c.workerId === 'p-b')!;
  assert.equal(b.terms.cachedTokens, 192);
  assert.equal(b.terms.prefillMs, 4);
  // 13 pages of 1 MB at 2 MB/ms on one host.
  assert.equal(b.terms.transferBytes, 13_000_000);
  assert.equal(b.terms.transferMs, 6.5);
  assert.equal(b.cost, 10.5);
  assert.equal(decision.candidates.find((c) => c.workerId === 'p-a')!.cost, 100 + 6.5);
});

test('a long queue outweighs a cached prefix: queued tokens are in the prefill term', () => {
  const decision = choosePrefill(
    request,
    [view('p-a', 0), view('p-b', 1, { numQueuedPrefillTokens: 1000 })],
    depths({ 1: 12 }),
    defaultPrefillPolicyParams,
  );
  assert.equal(decision.type === 'remote' && decision.workerId, 'p-a');
});

test('transfer cost: a prefill worker on the decode worker host wins a close call', () => {
  const decision = choosePrefill(
    request,
    [view('p-a', 0, { sameHostAsDecode: false }), view('p-b', 1)],
    depths({}),
    defaultPrefillPolicyParams,
  );
  assert.equal(decision.type === 'remote' && decision.workerId, 'p-b');
  if (decision.type !== 'remote') return;
  assert.equal(decision.candidates[0]!.terms.transferMs, 13); // 1 GB/s across hosts
});

test('ties go to the least recently picked, then the smaller id', () => {
  const fresh = choosePrefill(
    request,
    [view('p-b', 1), view('p-a', 0)],
    depths({}),
    defaultPrefillPolicyParams,
  );
  assert.equal(fresh.type === 'remote' && fresh.workerId, 'p-a');
  const later = choosePrefill(
    request,
    [view('p-a', 0, { lastPickedSeq: 3 }), view('p-b', 1, { lastPickedSeq: 0 })],
    depths({}),
    defaultPrefillPolicyParams,
  );
  assert.equal(later.type === 'remote' && later.workerId, 'p-b');
});

test('threshold: fewer uncached tokens on the decode worker than N -> local, with the candidates scored', () => {
  const params = { ...defaultPrefillPolicyParams, disaggThreshold: 64 };
  const cachedOnDecode = choosePrefill(
    { ...request, numCachedOnDecode: 176 },
    [view('p-a', 0)],
    depths({}),
    params,
  );
  assert.equal(cachedOnDecode.type, 'local');
  if (cachedOnDecode.type !== 'local') return;
  assert.equal(cachedOnDecode.numUncachedOnDecode, 24);
  assert.equal(cachedOnDecode.threshold, 64);
  assert.equal(cachedOnDecode.candidates.length, 1);
  assert.match(
    cachedOnDecode.reason,
    /24 prompt tokens uncached on the decode worker < --disagg-threshold 64/,
  );
  // The same prompt uncached on D goes out, even though P has most of it cached.
  const uncached = choosePrefill(request, [view('p-a', 0)], depths({ 0: 12 }), params);
  assert.equal(uncached.type, 'remote');
  // 0 sends everything, a fully cached prompt included.
  const zero = choosePrefill(
    { ...request, numCachedOnDecode: 200 },
    [view('p-a', 0)],
    depths({}),
    defaultPrefillPolicyParams,
  );
  assert.equal(zero.type, 'remote');
});

test('no prefill worker known: no decision (the decode worker decides)', () => {
  assert.deepEqual(choosePrefill(request, [], depths({}), defaultPrefillPolicyParams), {
    type: 'undecided',
    reason: 'no prefill worker known',
  });
});

test('a prefill worker without an index slot is chosen by load only', () => {
  const decision = choosePrefill(
    request,
    [view('p-a', -1, { numQueuedPrefillTokens: 0 }), view('p-b', 1, { numQueuedPrefillTokens: 300 })],
    depths({ 1: 2 }),
    defaultPrefillPolicyParams,
  );
  assert.equal(decision.type === 'remote' && decision.workerId, 'p-a');
  if (decision.type !== 'remote') return;
  assert.equal(decision.candidates[0]!.terms.matchedBlocks, 0);
});
