// The Prefill call's protobuf codec: what D sends is what P reads, null kept apart from empty and
// zero, every number exact.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SamplingParams } from '@tandem/executor';
import { fromBinary, PrefillRequestSchema } from '@tandem/proto';
import {
  decodePrefillRequest,
  decodePrefillResponse,
  encodePrefillRequest,
  encodePrefillResponse,
} from '../src/prefill-codec.ts';
import type { PrefillRequestWire, PrefillResponseWire } from '../src/prefill-rpc.ts';

const sampling = (overrides: Partial<SamplingParams> = {}): SamplingParams => ({
  temperature: 0.7,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repetitionPenalty: 1.1,
  frequencyPenalty: -0.3,
  presencePenalty: 0.6,
  logitBias: new Map([
    [5, -100],
    [42, 2.5],
  ]),
  seed: 2 ** 53 - 1,
  numTopLogprobs: 5,
  allowedTokenIds: Int32Array.of(1, 2, 3),
  ...overrides,
});

const request = (overrides: Partial<PrefillRequestWire> = {}): PrefillRequestWire => ({
  requestId: 'req-1',
  promptTokenIds: [5, 9, 13, 0, 151643],
  sampling: sampling(),
  cacheNamespace: 'salt',
  destination: {
    host: '10.0.0.7',
    port: 40123,
    transferId: 2n ** 64n - 1n,
    firstPageIndex: 2,
    dstPages: [17, 3, 99],
    numTokens: 40,
  },
  leaseMs: 20_000,
  ...overrides,
});

test('a request round-trips exactly, the 64-bit transfer id included', () => {
  const wire = request();
  assert.deepEqual(decodePrefillRequest(encodePrefillRequest(wire)), wire);
  const message = fromBinary(PrefillRequestSchema, encodePrefillRequest(wire));
  assert.equal(message.destination?.transferId, 2n ** 64n - 1n);
});

test('null stays null and empty stays empty: bias, allowed ids, seed, namespace', () => {
  const nulls = request({
    cacheNamespace: null,
    sampling: sampling({ logitBias: null, allowedTokenIds: null, seed: null }),
  });
  assert.deepEqual(decodePrefillRequest(encodePrefillRequest(nulls)), nulls);
  const empties = request({
    cacheNamespace: '',
    sampling: sampling({ logitBias: new Map(), allowedTokenIds: new Int32Array(0), seed: 0 }),
  });
  assert.deepEqual(decodePrefillRequest(encodePrefillRequest(empties)), empties);
});

test('a response round-trips with its logprobs exact', () => {
  const wire: PrefillResponseWire = {
    firstTokenId: 1234,
    logprob: Math.log(0.3),
    topLogprobs: [
      { tokenId: 1234, logprob: Math.log(0.3) },
      { tokenId: 7, logprob: -1.0000000000000002 },
    ],
    numPromptTokens: 300,
    numCachedTokens: 256,
    bytesSent: 3 * 2 ** 40,
  };
  assert.deepEqual(decodePrefillResponse(encodePrefillResponse(wire)), wire);
});

test('a request without sampling or destination is refused by the reader', () => {
  assert.throws(() => decodePrefillRequest(Buffer.alloc(0)), RangeError);
});
