// `tandem bench <run|sweep|compare|plot>`: the command-line face of the package.
import { mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { discoverModel, runBench } from './bench.ts';
import { renderCompareTable } from './compare.ts';
import { BenchConfigError, BenchResultFileError, BenchWarmupError } from './errors.ts';
import { parseRunArgs, type RawOptions, requestRate, runSettings } from './options.ts';
import { writeLatencyCdfs, writeSweepPlots, writeThroughputBars } from './plots.ts';
import { renderSummary } from './report.ts';
import { readResult, writeResult } from './result.ts';
import { readSweep, runSweep } from './sweep.ts';

const USAGE = `usage:
  tandem bench run --base-url URL [--model M | --model A:3,B:1 (a mix)] [--api completions|chat]
      [--workload random|sharegpt-like|shared-prefix|multi-turn] [--num-prompts N]
      [--input-len L --output-len L --range-ratio R]            (random, multi-turn)
      [--sharegpt-output-len L]                                 (sharegpt-like)
      [--num-groups G --prompts-per-group P --system-prompt-len L --question-len L --output-len L
       --shared-prefix-order shuffled|grouped]                  (shared-prefix)
      [--num-conversations C --turns T --think-time-ms MS]      (multi-turn; C defaults to N / T)
      [--request-rate R|inf] [--burstiness B] [--max-concurrency C] [--seed S] [--ignore-eos]
      [--warmup-requests N]
      [--prompt-format token-ids|words] [--vocab-size V]
      [--slo-ttft-ms MS] [--slo-tpot-ms MS] [--slo-e2e-ms MS]
      [--out result.json] [--plot-dir DIR] [--label NAME]
  tandem bench sweep --rates 1,2,4 --out-dir DIR [run options]
  tandem bench compare A.json B.json ...
  tandem bench plot --out-dir DIR [--prefix P] A.json B.json ...
      (results: latency CDFs, and throughput bars for several; sweep.json files: rate plots)
`;

async function resolveModel(o: RawOptions): Promise<string> {
  if (o.model !== undefined) return o.model;
  if (o['base-url'] === undefined) throw new BenchConfigError('--base-url is required');
  const model = await discoverModel(o['base-url'], o['api-key'] ?? process.env.OPENAI_API_KEY ?? null);
  if (model === null)
    throw new BenchConfigError('--model not given and the endpoint lists no model at /v1/models');
  return model;
}

async function runCommand(argv: string[]): Promise<number> {
  const { values: o } = parseRunArgs(argv);
  const settings = runSettings(o, requestRate(o['request-rate']), await resolveModel(o));
  let numDone = 0;
  const result = await runBench(settings, () => {
    numDone++;
    if (!o.quiet && numDone % 50 === 0) process.stderr.write(`  ${numDone} requests done\n`);
  });
  process.stdout.write(renderSummary(result.config, result.summary, result.perModel));
  if (o.out !== undefined) {
    mkdirSync(dirname(o.out), { recursive: true });
    writeResult(o.out, result);
    process.stdout.write(`result: ${o.out}\n`);
  }
  if (o['plot-dir'] !== undefined) {
    mkdirSync(o['plot-dir'], { recursive: true });
    const files = writeLatencyCdfs([{ label: result.config.label, result }], o['plot-dir'], '');
    process.stdout.write(`plots: ${files.join(', ')}\n`);
  }
  return result.summary.numFailed === 0 ? 0 : 1;
}

async function sweepCommand(argv: string[]): Promise<number> {
  const { values: o } = parseRunArgs(argv);
  if (o.rates === undefined || o['out-dir'] === undefined)
    throw new BenchConfigError('sweep needs --rates and --out-dir');
  const rates = o.rates.split(',').map((r) => requestRate(r.trim()));
  if (rates.some((r) => !Number.isFinite(r)))
    throw new BenchConfigError('sweep --rates must be finite rates (req/s)');
  const model = await resolveModel(o);
  const label = o.label ?? o.workload;
  const sweep = await runSweep(
    (rate, index) => {
      const settings = runSettings(o, rate, model);
      settings.config.label = `${label}@${rate}`;
      settings.config.seed += index;
      return settings;
    },
    rates,
    o['out-dir'],
    label,
    (line) => process.stdout.write(`${line}\n`),
  );
  process.stdout.write(`sweep: ${o['out-dir']}/sweep.json (${sweep.points.length} rates)\n`);
  return 0;
}

function compareCommand(argv: string[]): number {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  if (positionals.length === 0) throw new BenchConfigError('compare needs result files');
  const results = positionals.map((path) => {
    const result = readResult(path);
    return { label: result.config.label || basename(path, '.json'), result };
  });
  process.stdout.write(renderCompareTable(results));
  return 0;
}

function plotCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'out-dir': { type: 'string' }, prefix: { type: 'string', default: '' } },
  });
  const outDir = values['out-dir'];
  if (outDir === undefined || positionals.length === 0)
    throw new BenchConfigError('plot needs --out-dir and files');
  mkdirSync(outDir, { recursive: true });
  const kinds = positionals.map(
    (path) => (JSON.parse(readFileSync(path, 'utf8')) as { type?: unknown }).type,
  );
  let files: string[];
  if (kinds.every((k) => k === 'tandem-bench-sweep')) {
    const sweeps = positionals.map((path) => readSweep(path));
    files = writeSweepPlots(
      sweeps.map((s) => ({ label: s.label, points: s.points })),
      outDir,
      values.prefix,
    );
  } else {
    const results = positionals.map((path) => {
      const result = readResult(path);
      return { label: result.config.label || basename(path, '.json'), result };
    });
    files = writeLatencyCdfs(results, outDir, values.prefix);
    if (results.length > 1) files.push(...writeThroughputBars(results, outDir, values.prefix));
  }
  process.stdout.write(`plots: ${files.join(', ')}\n`);
  return 0;
}

export async function benchMain(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    switch (sub) {
      case 'run':
        return await runCommand(rest);
      case 'sweep':
        return await sweepCommand(rest);
      case 'compare':
        return compareCommand(rest);
      case 'plot':
        return plotCommand(rest);
      default:
        process.stderr.write(USAGE);
        return sub === undefined || sub === '--help' || sub === '-h' ? 0 : 2;
    }
  } catch (e) {
    if (e instanceof BenchConfigError || e instanceof BenchResultFileError) {
      process.stderr.write(`tandem bench: ${e.message}\n`);
      return 2;
    }
    if (e instanceof BenchWarmupError) {
      process.stderr.write(`tandem bench: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
