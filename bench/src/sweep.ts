// A rate sweep: the same kind of seeded workload at each offered rate, one result file per rate,
// a sweep.json index, and the throughput / goodput plots. Rate i runs with seed + i: the same
// prompts again would be served from the server's prefix cache and flatter every later rate.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBench } from './bench.ts';
import { BenchResultFileError } from './errors.ts';
import type { RunSettings } from './options.ts';
import { type SweepPoint, writeSweepPlots } from './plots.ts';
import { writeResult } from './result.ts';

export type SweepFile = {
  type: 'tandem-bench-sweep';
  version: 1;
  label: string;
  points: Array<SweepPoint & { resultFile: string }>;
};

export async function runSweep(
  settingsAt: (ratePerS: number, index: number) => RunSettings,
  ratesPerS: number[],
  outDir: string,
  label: string,
  log: (line: string) => void,
): Promise<SweepFile> {
  mkdirSync(outDir, { recursive: true });
  const sweep: SweepFile = { type: 'tandem-bench-sweep', version: 1, label, points: [] };
  for (const [index, rate] of ratesPerS.entries()) {
    const settings = settingsAt(rate, index);
    const result = await runBench(settings, null);
    const resultFile = `rate-${rate}.json`;
    writeResult(join(outDir, resultFile), result);
    sweep.points.push({ requestRatePerS: rate, summary: result.summary, resultFile });
    const g = result.summary.goodput;
    log(
      `rate ${rate} req/s: ${result.summary.requestThroughputPerS.toFixed(3)} req/s, ${result.summary.outputTokenThroughputPerS.toFixed(1)} out tok/s` +
        (g === null
          ? ''
          : `, goodput ${g.requestsPerS.toFixed(3)} req/s (${(g.fractionGood * 100).toFixed(0)}% good)`),
    );
  }
  writeFileSync(join(outDir, 'sweep.json'), `${JSON.stringify(sweep, null, 1)}\n`);
  writeSweepPlots([{ label, points: sweep.points }], outDir, '');
  return sweep;
}

export function readSweep(path: string): SweepFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new BenchResultFileError(`cannot read sweep ${path}`, { cause });
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    (parsed as { type?: unknown }).type !== 'tandem-bench-sweep'
  ) {
    throw new BenchResultFileError(`${path} is not a tandem bench sweep`);
  }
  return parsed as SweepFile;
}
