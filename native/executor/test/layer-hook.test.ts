// forward's onLayerDone: every layer once, in order, before the pass resolves, without changing
// what the pass computes; reports arrive while the pass still runs (what lets a prefill worker
// send a layer's KV during the later layers); a throwing hook rejects the pass, and only it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Executor } from '../src/index.ts';
import { loadDemo, loadFixtures, pageRange, seqInput, testDeviceOptions } from './helpers.ts';

describe('forward onLayerDone', () => {
  const demo = loadDemo();
  let ex: Executor;
  before(async () => {
    ex = await Executor.open({ ...testDeviceOptions, modelDir: demo.dir, pageSize: 16, numPages: 256 });
  });
  after(async () => {
    await ex.close();
  });

  const prompt = (length: number, seed: number): Int32Array =>
    Int32Array.from({ length }, (_, i) => 5 + ((i * 7919 + seed * 104729) % 4000));

  test('reports each layer once, in order, before the pass resolves; outputs unchanged', async () => {
    const tokenIds = prompt(300, 1);
    const [plain] = await ex.forward([seqInput({ tokenIds, pageTable: pageRange(0, 19) })]);
    const layers: number[] = [];
    const outputs = ex.forward([seqInput({ tokenIds, pageTable: pageRange(19, 19) })], {
      onLayerDone: (layer) => layers.push(layer),
    });
    const [hooked] = await outputs;
    assert.deepEqual(
      layers,
      Array.from({ length: ex.info.numLayers }, (_, l) => l),
    );
    assert.equal(hooked?.samples[0]?.tokenId, plain?.samples[0]?.tokenId);
    assert.equal(hooked?.samples[0]?.logprob, plain?.samples[0]?.logprob);
  });

  test('reports arrive while the pass is still running', async () => {
    const live = ex.stats.layerReportsLive;
    // Long passes, so the JS thread sees layer reports before the last layer is done.
    for (let i = 0; i < 4; i++) {
      const tokenIds = prompt(1536, i + 2);
      let numReports = 0;
      await ex.forward([seqInput({ tokenIds, pageTable: pageRange(0, 96) })], {
        onLayerDone: () => numReports++,
      });
      assert.equal(numReports, ex.info.numLayers);
    }
    assert.ok(ex.stats.layerReportsLive > live, 'no layer was reported before its pass ended');
  });

  test('a hook that throws rejects that pass with its error; the next pass is unaffected', async () => {
    const tokenIds = prompt(40, 9);
    const failure = new Error('hook failed');
    await assert.rejects(
      ex.forward([seqInput({ tokenIds, pageTable: pageRange(0, 3) })], {
        onLayerDone: (layer) => {
          if (layer === 1) throw failure;
        },
      }),
      (error) => error === failure,
    );
    const [out] = await ex.forward([seqInput({ tokenIds, pageTable: pageRange(3, 3) })]);
    assert.ok(out?.samples[0] !== undefined);
  });
});

test('device timing: busy time per pass and the idle gap between passes are counted', async () => {
  const [fx] = loadFixtures();
  await using ex = await Executor.open({
    modelDir: fx!.dir,
    ...testDeviceOptions,
    pageSize: 16,
    numPages: 8,
  });
  const input = seqInput({ tokenIds: Int32Array.of(5, 9, 13, 4), pageTable: pageRange(0, 1) });
  await ex.forward([input]);
  const afterOne = ex.stats;
  assert.ok(afterOne.deviceBusyMs > 0, 'a pass takes device time');
  assert.equal(afterOne.deviceIdleMs, 0, 'the first pass has no gap before it');
  await new Promise((resolve) => setTimeout(resolve, 30));
  await ex.forward([input]);
  const afterTwo = ex.stats;
  assert.ok(afterTwo.deviceBusyMs > afterOne.deviceBusyMs);
  assert.ok(afterTwo.deviceIdleMs >= 25, `the 30 ms pause is idle time (got ${afterTwo.deviceIdleMs} ms)`);
  assert.equal(afterTwo.deviceBusyMsLarge, 0, 'one sequence is not a large batch');
});
