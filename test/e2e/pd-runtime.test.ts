// Disaggregated prefill on the shared runtime, in one process: a decode engine whose prompts are
// prefilled by a prefill engine behind a real gRPC Prefill server, the KV written into the decode
// engine's reserved pages over real kvtransfer sockets. Greedy PD output must equal the same
// engine's unified (local prefill) output on every fixture case.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pageCopyBytes, specFromLayout } from '@tandem/kvtransfer';
import {
  assertNoHeldPages,
  fixtureNames,
  generate,
  greedyRequest,
  greedySampling,
  type PdPair,
  pdFixture,
  startPdPair,
} from './pd-helpers.ts';

for (const name of fixtureNames) {
  const fixture = pdFixture(name);
  describe(`PD on ${name}`, () => {
    let pd: PdPair;
    before(async () => {
      pd = await startPdPair(fixture.dir, name);
    });
    after(async () => {
      await pd?.close();
    });

    test('every text and chat case: PD output == unified output; P ran the prompt; bytes as expected', async () => {
      const spec = specFromLayout(name, pd.decode.kvLayout);
      for (const [i, testCase] of fixture.cases.entries()) {
        const prompt = testCase.prompt_ids;
        // Unified reference: the same decode engine, local prefill, its own cache namespace.
        const unified = await generate(pd.decode, {
          ...greedyRequest(`u${i}`, prompt),
          cacheNamespace: 'unified',
        });
        assert.equal(unified.tokenIds.length, 24);

        const pForward = pd.prefill.stats().numForwardTokens;
        const pCached = pd.service.stats.numCachedTokens;
        const bytesBefore = pd.host.stats.numBytesReceived;
        const remoteBefore = pd.host.stats.numRemotePrefills;
        const layerSends = pd.service.stats.numLayerSends;
        const request = greedyRequest(`pd${i}`, prompt);
        const disaggregated = await generate(
          pd.decode,
          request,
          pd.host.hooksFor(request, { type: 'remote', addresses: [pd.prefillAddress] }, greedySampling),
        );

        assert.deepEqual(disaggregated.tokenIds, unified.tokenIds, `case ${i}: PD == unified`);
        assert.equal(pd.host.stats.numRemotePrefills, remoteBefore + 1, 'the prompt went through P');
        assert.equal(
          pd.host.stats.transfersByTransport.tcp,
          pd.host.stats.numRemotePrefills,
          'host pools: every transfer over TCP',
        );
        const pComputed = pd.prefill.stats().numForwardTokens - pForward;
        const pCachedNow = pd.service.stats.numCachedTokens - pCached;
        assert.equal(pComputed, prompt.length - pCachedNow, 'P ran the uncached prompt tokens');
        assert.ok(pComputed > 0);
        const numDstPages = Math.ceil(prompt.length / 16) - disaggregated.numCachedTokens / 16;
        assert.equal(
          pd.host.stats.numBytesReceived - bytesBefore,
          pageCopyBytes(spec, numDstPages),
          'kvtransfer moved K and V of every layer of every uncached prompt page',
        );
        assert.ok(
          pd.service.stats.numLayerSends - layerSends >= spec.numLayers,
          'P sent the KV layer by layer as each layer got computed',
        );
      }
      assert.equal(pd.host.stats.numFallbacks, 0);
      assertNoHeldPages(pd.decode);
      assertNoHeldPages(pd.prefill);
    });
  });
}

describe('PD prefix reuse, retries and fallback (tiny-llama)', () => {
  const fixture = pdFixture('tiny-llama');
  let pd: PdPair;
  before(async () => {
    pd = await startPdPair(fixture.dir, fixture.name);
  });
  after(async () => {
    await pd?.close();
  });

  const promptOf = (length: number, seed: number): number[] =>
    Array.from({ length }, (_, i) => 10 + ((i * 7919 + seed * 104729) % 480));

  test('a second request sharing a 200-token prefix computes only its suffix on P', async () => {
    const prefix = promptOf(200, 1);
    const first = [...prefix, ...promptOf(10, 2)];
    const second = [...prefix, ...promptOf(15, 3)];
    const a = greedyRequest('prefix-a', first, 4);
    await generate(
      pd.decode,
      a,
      pd.host.hooksFor(a, { type: 'remote', addresses: [pd.prefillAddress] }, greedySampling),
    );
    const pForward = pd.prefill.stats().numForwardTokens;
    const b = greedyRequest('prefix-b', second, 4);
    const out = await generate(
      pd.decode,
      b,
      pd.host.hooksFor(b, { type: 'remote', addresses: [pd.prefillAddress] }, greedySampling),
    );
    // P holds 13 full pages of the first prompt; the second matches 12 of them (192 tokens).
    assert.equal(pd.prefill.stats().numForwardTokens - pForward, second.length - 192);
    const unified = await generate(pd.decode, {
      ...greedyRequest('prefix-u', second, 4),
      cacheNamespace: 'u',
    });
    assert.deepEqual(out.tokenIds, unified.tokenIds);
  });

  test('a dead prefill worker first in line: the next one prefills', async () => {
    const prompt = promptOf(40, 4);
    const request = greedyRequest('retry', prompt);
    const failed = pd.host.stats.numAttemptsFailed;
    const remote = pd.host.stats.numRemotePrefills;
    const out = await generate(
      pd.decode,
      request,
      pd.host.hooksFor(
        request,
        { type: 'remote', addresses: ['127.0.0.1:1', pd.prefillAddress] },
        greedySampling,
      ),
    );
    assert.equal(pd.host.stats.numAttemptsFailed, failed + 1);
    assert.equal(pd.host.stats.numRemotePrefills, remote + 1);
    const unified = await generate(pd.decode, { ...greedyRequest('retry-u', prompt), cacheNamespace: 'u' });
    assert.deepEqual(out.tokenIds, unified.tokenIds);
  });

  test('no reachable prefill worker: the decode engine prefills locally', async () => {
    const prompt = promptOf(50, 5);
    const request = greedyRequest('fallback', prompt);
    const fallbacks = pd.host.stats.numFallbacks;
    const out = await generate(
      pd.decode,
      request,
      pd.host.hooksFor(request, { type: 'remote', addresses: ['127.0.0.1:1'] }, greedySampling),
    );
    assert.equal(pd.host.stats.numFallbacks, fallbacks + 1);
    const unified = await generate(pd.decode, {
      ...greedyRequest('fallback-u', prompt),
      cacheNamespace: 'u',
    });
    assert.deepEqual(out.tokenIds, unified.tokenIds);
  });

  test('cancelled requests at random points leave no page held on either side', async () => {
    const runs: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      const request = greedyRequest(`cancel${i}`, promptOf(20 + ((i * 37) % 120), 100 + i), 8);
      const controller = new AbortController();
      setTimeout(() => controller.abort(), (i * 13) % 40);
      runs.push(
        generate(
          pd.decode,
          request,
          pd.host.hooksFor(request, { type: 'remote', addresses: [pd.prefillAddress] }, greedySampling),
          controller.signal,
        ).catch(() => undefined),
      );
    }
    await Promise.all(runs);
    // The prefill side finishes its own bookkeeping after the decode side let go.
    const deadline = Date.now() + 5000;
    while (pd.service.numRunning > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(pd.service.numRunning, 0);
    assertNoHeldPages(pd.decode);
    assertNoHeldPages(pd.prefill);
  });
});
