// The GPU serving benchmark's table (serve.sh's last step): every workload's throughput and
// latency through the router, the GPU's idle share while it ran, and the batch-1 decode roofline
// from the HBM bandwidth measured in the same run; each next to issue 12's target.
//   node bench/cuda/serve-summary.ts <serve.sh's $OUT>
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const outDir = process.argv[2] ?? '/tmp/tandem-serve-out';

interface Stats {
  p50: number;
  mean: number;
}
interface Result {
  summary: {
    numCompleted: number;
    numFailed: number;
    outputTokenThroughputPerS: number;
    tpotMs: Stats | null;
    ttftMs: Stats | null;
    itlMs: Stats | null;
  };
}
interface DeviceTime {
  busyMs: number;
  idleMs: number;
  busyMsLarge: number;
  idleMsLarge: number;
}

const ceilings = JSON.parse(readFileSync(join(outDir, 'ceilings.json'), 'utf8')) as {
  gpu: string;
  hbm_gb_s: number;
  bf16_gemm_tflop_s: number;
};
const device = readFileSync(join(outDir, 'device.txt'), 'utf8').trim().split('\n');

/** Bytes of a Llama checkpoint's weights in bf16, from its config.json. */
function weightBytes(modelDir: string): number {
  const c = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as Record<string, number>;
  const h = c.hidden_size!;
  const headDim = c.head_dim ?? h / c.num_attention_heads!;
  const q = c.num_attention_heads! * headDim;
  const kv = c.num_key_value_heads! * headDim;
  const perLayer = h * (q + 2 * kv) + q * h + 3 * h * c.intermediate_size! + 2 * h;
  const embed = c.vocab_size! * h;
  return 2 * (embed * (c.tie_word_embeddings ? 1 : 2) + c.num_hidden_layers! * perLayer + h);
}

function idleShare(name: string, large: boolean): string {
  const path = join(outDir, `${name}_device.json`);
  if (!existsSync(path)) return 'n/a';
  const { before, after } = JSON.parse(readFileSync(path, 'utf8')) as {
    before: DeviceTime;
    after: DeviceTime;
  };
  const busy = large ? after.busyMsLarge - before.busyMsLarge : after.busyMs - before.busyMs;
  const idle = large ? after.idleMsLarge - before.idleMsLarge : after.idleMs - before.idleMs;
  return busy + idle > 0 ? `${((100 * idle) / (busy + idle)).toFixed(1)} %` : 'n/a';
}

const lines = [
  `# GPU serving benchmark: ${ceilings.gpu}`,
  '',
  `${device.join('; ')}. Ceilings in the same run: HBM copy ${ceilings.hbm_gb_s.toFixed(0)} GB/s, bf16 GEMM ${ceilings.bf16_gemm_tflop_s.toFixed(0)} TFLOP/s.`,
  '',
  '| model | workload | output tok/s | TPOT p50 ms | TTFT p50 ms | ITL p50 ms | GPU idle (all steps) | GPU idle (batch >= 64) | failed |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
];
const targets: string[] = [];
for (const model of ['1b', '8b']) {
  const label = `llama-${model}`;
  for (const workload of ['batch1', 'conc64', 'sharegpt', 'ttft2k_unified', 'ttft2k_pd']) {
    const path = join(outDir, `${label}_${workload}.json`);
    if (!existsSync(path)) continue;
    const { summary } = JSON.parse(readFileSync(path, 'utf8')) as Result;
    const f = (s: Stats | null) => (s === null ? 'n/a' : s.p50.toFixed(2));
    lines.push(
      `| ${label} | ${workload} | ${summary.outputTokenThroughputPerS.toFixed(0)} | ${f(summary.tpotMs)} | ${f(summary.ttftMs)} | ${f(summary.itlMs)} | ${idleShare(`${label}_${workload}`, false)} | ${idleShare(`${label}_${workload}`, true)} | ${summary.numFailed} |`,
    );
    const modelDir = `/tmp/${label}-neox`;
    if (workload === 'batch1' && summary.tpotMs !== null && existsSync(join(modelDir, 'config.json'))) {
      const rooflineMs = weightBytes(modelDir) / (ceilings.hbm_gb_s * 1e6);
      const target = model === '8b' ? 5.3 : 0.95;
      targets.push(
        `- ${label} batch-1 TPOT p50 ${summary.tpotMs.p50.toFixed(2)} ms: ${((100 * rooflineMs) / summary.tpotMs.p50).toFixed(0)} % of the weight-read roofline (${rooflineMs.toFixed(2)} ms at ${ceilings.hbm_gb_s.toFixed(0)} GB/s); target <= ${target} ms: ${summary.tpotMs.p50 <= target ? 'met' : 'not met'}`,
      );
    }
    if (workload === 'sharegpt') {
      const target = model === '8b' ? 17_000 : 40_000;
      targets.push(
        `- ${label} sharegpt-like output ${summary.outputTokenThroughputPerS.toFixed(0)} tok/s; target >= ${target}: ${summary.outputTokenThroughputPerS >= target ? 'met' : 'not met'}`,
      );
    }
  }
}
for (const model of ['1b', '8b']) {
  const read = (layout: string): Result | null => {
    const path = join(outDir, `llama-${model}_ttft2k_${layout}.json`);
    return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Result) : null;
  };
  const unified = read('unified');
  const pd = read('pd');
  if (unified?.summary.ttftMs && pd?.summary.ttftMs) {
    const added = pd.summary.ttftMs.p50 - unified.summary.ttftMs.p50;
    targets.push(
      `- llama-${model} 2k-token prompt TTFT p50: unified ${unified.summary.ttftMs.p50.toFixed(2)} ms, PD ${pd.summary.ttftMs.p50.toFixed(2)} ms: disaggregation adds ${added.toFixed(2)} ms (issue 13 target for 8B over CUDA IPC: <= 2 ms): ${added <= 2 ? 'met' : 'not met'}`,
    );
  }
}
lines.push('', 'Targets (issues 12 and 13):', ...targets);
console.log(lines.join('\n'));
