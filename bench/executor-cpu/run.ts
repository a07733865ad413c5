// CPU executor bench: prefill and batch-1 decode tokens/s on a 0.5B-shape float32 random
// checkpoint, next to this machine's memory bandwidth (STREAM triad) measured in the same run.
//   node bench/executor-cpu/run.ts [--prompt 512] [--decode 32] [--rounds 4] [--out FILE]
// Writes bench/executor-cpu/results.json (or FILE) and prints it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultSampling, Executor, measureMemoryBandwidth } from '@tandem/executor';
import { qwen05bShape, writeRandomQwen2Checkpoint } from './checkpoint.ts';

const { values } = parseArgs({
  options: {
    prompt: { type: 'string', default: '512' },
    decode: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '4' },
    out: { type: 'string', default: new URL('results.json', import.meta.url).pathname },
  },
});
const promptTokens = Number(values.prompt);
const decodeTokens = Number(values.decode);
const numRounds = Number(values.rounds);

const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-qwen05b-'));
try {
  let t0 = performance.now();
  const numParams = writeRandomQwen2Checkpoint(dir);
  const writeSeconds = (performance.now() - t0) / 1000;
  console.error(`wrote ${(numParams / 1e6).toFixed(1)}M params in ${writeSeconds.toFixed(1)} s`);

  const bandwidthBefore = await measureMemoryBandwidth({ bytesPerArray: 256 * 1024 * 1024, repeats: 8 });
  t0 = performance.now();
  const numPages = Math.ceil((promptTokens + 8 + numRounds * decodeTokens) / 16);
  await using ex = await Executor.open({ modelDir: dir, pageSize: 16, numPages });
  const loadSeconds = (performance.now() - t0) / 1000;

  const vocab = ex.info.vocabSize;
  const prompt = Int32Array.from({ length: promptTokens }, (_, i) => (i * 7919 + 13) % vocab);
  const pageTable = Int32Array.from({ length: numPages }, (_, i) => i);
  const input = (tokenIds: Int32Array, startPos: number) => ({
    tokenIds,
    startPos,
    pageTable,
    sampleIndices: Int32Array.of(tokenIds.length - 1),
    sampling: defaultSampling(),
    promptTokenIds: null,
    outputTokenIds: null,
    targetIds: null,
    returnLogits: false,
    returnProbs: false,
  });

  // Prefill: best of 3.
  let prefillSeconds = Number.POSITIVE_INFINITY;
  let next = 0;
  for (let r = 0; r < 3; r++) {
    t0 = performance.now();
    const [out] = await ex.forward([input(prompt, 0)]);
    prefillSeconds = Math.min(prefillSeconds, (performance.now() - t0) / 1000);
    next = out?.samples[0]?.tokenId ?? 0;
  }

  // Decode: batch 1, after the prompt. This machine may be shared, so we alternate a bandwidth
  // measurement and a decode run for several rounds; each round compares two numbers taken
  // seconds apart.
  let pos = promptTokens;
  const step = async () => {
    const [out] = await ex.forward([input(Int32Array.of(next), pos++)]);
    next = out?.samples[0]?.tokenId ?? 0;
  };
  for (let i = 0; i < 4; i++) await step();
  const rounds: { bandwidth: number; decodeTokensPerSecond: number; contextStart: number }[] = [];
  for (let r = 0; r < numRounds; r++) {
    const bandwidth = await measureMemoryBandwidth({ bytesPerArray: 256 * 1024 * 1024, repeats: 5 });
    const contextStart = pos;
    t0 = performance.now();
    for (let i = 0; i < decodeTokens; i++) await step();
    rounds.push({
      bandwidth,
      decodeTokensPerSecond: decodeTokens / ((performance.now() - t0) / 1000),
      contextStart,
    });
  }

  // Bytes one decode token must read: every weight once (the tied embedding is read in full as
  // lm_head) plus the KV cache so far.
  const {
    hiddenSize: H,
    numLayers: L,
    numHeads,
    numKvHeads,
    intermediateSize: I,
    vocabSize: V,
  } = qwen05bShape;
  const headDim = H / numHeads;
  const qkvRows = (numHeads + 2 * numKvHeads) * headDim;
  const layerParams = H * qkvRows + qkvRows + H * numHeads * headDim + 3 * H * I + 2 * H;
  const weightBytes = 4 * (L * layerParams + V * H + H);
  const avgContext = promptTokens + 4 + (numRounds * decodeTokens) / 2;
  const kvBytes = 4 * L * 2 * numKvHeads * headDim * avgContext;
  const bytesPerToken = weightBytes + kvBytes;
  const perRound = rounds.map((r) => ({
    bandwidthGBs: r.bandwidth / 1e9,
    decodeTokensPerSecond: r.decodeTokensPerSecond,
    rooflineTokensPerSecond: r.bandwidth / bytesPerToken,
    fractionOfRoofline: r.decodeTokensPerSecond / (r.bandwidth / bytesPerToken),
    contextStart: r.contextStart,
  }));
  const bestRound = perRound.reduce((a, b) => (b.fractionOfRoofline > a.fractionOfRoofline ? b : a));
  const bestBandwidth = Math.max(bandwidthBefore, ...rounds.map((r) => r.bandwidth));
  const bestDecode = Math.max(...rounds.map((r) => r.decodeTokensPerSecond));
  // lm_head runs for the last prompt row only.
  const prefillFlops = 2 * (L * layerParams * promptTokens + V * H);

  const results = {
    date: new Date().toISOString(),
    command: `node bench/executor-cpu/run.ts --prompt ${promptTokens} --decode ${decodeTokens} --rounds ${numRounds}`,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
    },
    loadAverage: loadavg(),
    checkpoint: {
      shape: 'Qwen2.5-0.5B',
      dtype: 'float32',
      params: numParams,
      weightBytes,
      writeSeconds,
      loadSeconds,
    },
    memoryBandwidthGBs: { beforeLoad: bandwidthBefore / 1e9, best: bestBandwidth / 1e9 },
    prefill: {
      promptTokens,
      seconds: prefillSeconds,
      tokensPerSecond: promptTokens / prefillSeconds,
      gflops: prefillFlops / prefillSeconds / 1e9,
    },
    decode: {
      batch: 1,
      tokensPerRound: decodeTokens,
      bytesPerToken,
      bestTokensPerSecond: bestDecode,
      msPerTokenAtBest: 1000 / bestDecode,
      achievedGBsAtBest: (bytesPerToken * bestDecode) / 1e9,
      bestRound,
      // The strictest view: the best decode rate against the best bandwidth seen in the run.
      fractionOfBestRoofline: bestDecode / (bestBandwidth / bytesPerToken),
      rounds: perRound,
    },
  };
  writeFileSync(values.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(JSON.stringify(results, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
