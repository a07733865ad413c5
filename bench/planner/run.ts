// The planner on a replayed bursty trace in a simulated cluster, against every static P:D split.
//   node bench/planner/run.ts [--quick] [--out-dir bench/planner/results]
// Fits the worker model to bench/cuda's measured H200 timings, replays the seeded trace with a
// sweep of static splits (the smallest that holds both SLOs is the baseline) and with the planner
// (its own decision loop, fed by the simulated Prometheus, writing the simulated Scale), then
// writes results.json and SVG plots.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Logger } from '@tandem/common';
import {
  defaultPlannerConfig,
  Planner,
  type PlannerConfig,
  PlannerLoop,
  PlannerMetrics,
} from '@tandem/planner';
import { renderLineChart, type Series } from '../src/svg.ts';
import { ClusterSim, type SimOptions, type SimResult } from './cluster-sim.ts';
import { decodeStepMs, fitDecode, fitPrefill, type Measured, readMeasured } from './fit.ts';
import { defaultTraceOptions, makeTrace, type TraceOptions, type TraceRequest } from './trace.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const measuredFile = join(here, '..', 'cuda', 'results', 'run13-h200', 'bench_8b.txt');

export const slo = { ttftP90S: 1.0, itlP90S: 0.02 };
const tickS = 15;

export interface StaticRun {
  prefill: number;
  decode: number;
  result: SimResult;
  meetsSlo: boolean;
}

export function meets(result: SimResult): boolean {
  return (
    !result.stoppedOnMiss &&
    result.unfinished === 0 &&
    result.ttftP90S <= slo.ttftP90S &&
    result.itlP90S <= slo.itlP90S
  );
}

/**
 * What an operator would give the planner, read off the benchmark table (not the fit): prefill
 * tokens/s at 2048 tokens; for each measured context, the decode tokens/s of the largest measured
 * batch whose step stays within 0.8 x the ITL SLO; the KV tokens a worker holds; the batch-1 step. `optimism`
 * scales the capacities (robustness runs).
 */
export function plannerProfile(
  measured: Measured,
  optimism = 1,
): Pick<
  PlannerConfig,
  'prefillTokensPerReplicaS' | 'decodeProfile' | 'kvTokensPerReplica' | 'decodeBaseStepS'
> {
  const prefill = measured.prefill.find((p) => p.tokens === 2048) ?? measured.prefill[0];
  const contexts = [...new Set(measured.decode.map((p) => p.context))].sort((a, b) => a - b);
  const decodeProfile = contexts.map((context) => {
    const within = measured.decode
      .filter((p) => p.context === context && p.msPerStep <= 0.8 * slo.itlP90S * 1000)
      .sort((a, b) => b.batch - a.batch)[0];
    return { context, tokensPerS: Math.round((within?.tokensPerSecond ?? 100) * optimism) };
  });
  return {
    prefillTokensPerReplicaS: Math.round((prefill?.tokensPerSecond ?? 30_000) * optimism),
    decodeProfile,
    kvTokensPerReplica: measured.kvPages * 16,
    decodeBaseStepS: (measured.decode.find((p) => p.batch === 1)?.msPerStep ?? 5) / 1000,
  };
}

export function simOptions(measured: Measured): SimOptions {
  return {
    decode: fitDecode(measured.decode).model,
    prefill: fitPrefill(measured.prefill).model,
    kvTokensPerWorker: measured.kvPages * 16,
    maxRunning: 256,
    kvBytesPerToken: 32 * 8 * 128 * 2 * 2,
    kvLinkGBs: 25,
    startupS: 30,
    signalWindowS: 30,
  };
}

export async function runStatic(
  options: SimOptions,
  trace: TraceRequest[],
  window: { fromS: number; toS: number },
  prefill: number,
  decode: number,
): Promise<StaticRun> {
  const sim = new ClusterSim(options, { prefill, decode });
  const result = await sim.run(trace, window, tickS, async () => {}, {
    ttftS: slo.ttftP90S,
    itlS: slo.itlP90S,
  });
  return { prefill, decode, result, meetsSlo: meets(result) };
}

export async function runPlanner(
  options: SimOptions,
  trace: TraceRequest[],
  window: { fromS: number; toS: number },
  config: PlannerConfig,
): Promise<{ result: SimResult; decisions: Record<string, number> }> {
  const sim = new ClusterSim(options, { prefill: config.prefill.min, decode: config.decode.min });
  const metrics = new PlannerMetrics();
  const loop = new PlannerLoop({
    planner: new Planner(config),
    signals: sim.signalSource,
    scaler: sim.scaler,
    metrics,
    logger: new Logger({ level: 'error' }),
  });
  const result = await sim.run(trace, window, tickS, async (nowS) => {
    await loop.tick(nowS);
  });
  const decisions: Record<string, number> = {};
  for (const [labels, count] of metrics.decisionCounts())
    if (!labels.includes('"hold"')) decisions[labels] = count;
  return { result, decisions };
}

/** Every split of `total` replicas, smallest total first, until one holds both SLOs (and the next total too, for the table). */
export async function sweepStatic(
  options: SimOptions,
  trace: TraceRequest[],
  window: { fromS: number; toS: number },
  maxTotal: number,
): Promise<{ runs: StaticRun[]; best: StaticRun | null }> {
  const runs: StaticRun[] = [];
  let best: StaticRun | null = null;
  for (let total = 2; total <= maxTotal; total++) {
    for (let prefill = 1; prefill < total; prefill++) {
      const run = await runStatic(options, trace, window, prefill, total - prefill);
      runs.push(run);
      if (
        run.meetsSlo &&
        (best === null || run.result.ttftP90S < best.result.ttftP90S) &&
        (best === null || best.prefill + best.decode === total)
      ) {
        best = run;
      }
    }
    if (best !== null) break;
  }
  return { runs, best };
}

function summary(result: SimResult) {
  return {
    stoppedOnMiss: result.stoppedOnMiss,
    ttftP90S: round(result.ttftP90S),
    itlP90S: round(result.itlP90S),
    ttftP50S: round(result.ttftP50S),
    itlP50S: round(result.itlP50S),
    replicaHours: {
      prefill: round(result.replicaHours.prefill),
      decode: round(result.replicaHours.decode),
      total: round(result.replicaHours.total),
    },
    completed: result.completed,
    unfinished: result.unfinished,
    minutesWithinSlo: round(
      result.perMinute.filter((m) => (m.ttftP90S ?? 0) <= slo.ttftP90S && (m.itlP90S ?? 0) <= slo.itlP90S)
        .length / Math.max(1, result.perMinute.length),
    ),
    meetsSlo: meets(result),
  };
}

function round(x: number): number {
  return Number(x.toPrecision(4));
}

function plots(
  outDir: string,
  measured: Measured,
  planner: SimResult,
  best: StaticRun,
  bursts: ReturnType<typeof makeTrace>['bursts'],
): void {
  const minutes = (r: SimResult, key: 'ttftP90S' | 'itlP90S', scale: number): Series['points'] =>
    r.perMinute.filter((m) => m[key] !== null).map((m) => [m.minute, (m[key] ?? 0) * scale]);
  const width = 900;
  const height = 420;
  const staticLabel = `static ${best.prefill}P:${best.decode}D`;
  writeFileSync(
    join(outDir, 'replicas.svg'),
    renderLineChart({
      title: `Replicas over the trace (planner vs best static split; bursts: ${bursts.map((b) => (b.kind === 'prompt-heavy' ? 'P' : 'D')).join('')})`,
      xLabel: 'minute',
      yLabel: 'pods',
      series: [
        { name: 'planner prefill', points: planner.timeline.map(([t, p]) => [t / 60, p]) },
        { name: 'planner decode', points: planner.timeline.map(([t, , d]) => [t / 60, d]) },
        {
          name: `${staticLabel} prefill`,
          points: [
            [0, best.prefill],
            [planner.durationS / 60, best.prefill],
          ],
        },
        {
          name: `${staticLabel} decode`,
          points: [
            [0, best.decode],
            [planner.durationS / 60, best.decode],
          ],
        },
      ],
      step: true,
      markers: false,
      width,
      height,
    }),
  );
  const sloLine = (value: number): Series => ({
    name: 'SLO',
    points: [
      [0, value],
      [planner.durationS / 60, value],
    ],
  });
  writeFileSync(
    join(outDir, 'ttft-p90-per-minute.svg'),
    renderLineChart({
      title: 'TTFT p90 per minute (s)',
      xLabel: 'minute',
      yLabel: 's',
      series: [
        { name: 'planner', points: minutes(planner, 'ttftP90S', 1) },
        { name: staticLabel, points: minutes(best.result, 'ttftP90S', 1) },
        sloLine(slo.ttftP90S),
      ],
      step: false,
      markers: false,
      width,
      height,
    }),
  );
  writeFileSync(
    join(outDir, 'itl-p90-per-minute.svg'),
    renderLineChart({
      title: 'ITL p90 per minute (ms)',
      xLabel: 'minute',
      yLabel: 'ms',
      series: [
        { name: 'planner', points: minutes(planner, 'itlP90S', 1000) },
        { name: staticLabel, points: minutes(best.result, 'itlP90S', 1000) },
        sloLine(slo.itlP90S * 1000),
      ],
      step: false,
      markers: false,
      width,
      height,
    }),
  );
  const decode = fitDecode(measured.decode).model;
  const contexts = [...new Set(measured.decode.map((p) => p.context))];
  writeFileSync(
    join(outDir, 'fit-decode.svg'),
    renderLineChart({
      title: `Decode step: measured (${measured.device}) and fitted`,
      xLabel: 'batch',
      yLabel: 'ms per step',
      series: contexts.flatMap((context) => {
        const points = measured.decode.filter((p) => p.context === context);
        return [
          {
            name: `measured ctx ${context}`,
            points: points.map((p) => [p.batch, p.msPerStep] as [number, number]),
          },
          {
            name: `fit ctx ${context}`,
            points: points.map((p) => [p.batch, decodeStepMs(decode, p.batch, context)] as [number, number]),
          },
        ];
      }),
      step: false,
      markers: true,
      width,
      height,
    }),
  );
}

/** The planner as the bench runs it: the operator's profile, this SLO, these bounds. */
export function benchPlannerConfig(measured: Measured): PlannerConfig {
  return {
    ...defaultPlannerConfig,
    ...plannerProfile(measured),
    sloTtftS: slo.ttftP90S,
    sloItlS: slo.itlP90S,
    // Two of each at least: a pool of one has no headroom for a burst's first minute, nor
    // for losing a node.
    prefill: { min: 2, max: 20 },
    decode: { min: 2, max: 20 },
    ratioMin: 0.25,
    ratioMax: 4,
    targetUtilization: 0.9,
    // A new pod serves 30 s (start-up) + up to one tick after the decision.
    lookaheadS: 45,
    downStabilizationS: 90,
    downCooldownS: 30,
    // Back from a burst in a few steps: up to half the pool per step (the library's default is a
    // quarter).
    maxDownFraction: 0.5,
  };
}

/** One seed: the static sweep, the planner, and the comparison. */
export async function runSeed(measured: Measured, traceOptions: TraceOptions) {
  const options = simOptions(measured);
  const { requests, bursts } = makeTrace(traceOptions);
  const window = { fromS: traceOptions.warmupS, toS: traceOptions.warmupS + traceOptions.durationS };
  const sweep = await sweepStatic(options, requests, window, 40);
  const planner = await runPlanner(options, requests, window, benchPlannerConfig(measured));
  const best = sweep.best;
  return { requests, bursts, sweep, planner, best };
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      seeds: { type: 'string', default: '1,2,3' },
      'out-dir': { type: 'string', default: join(here, 'results') },
    },
  });
  const measured = readMeasured(measuredFile);
  const decodeFit = fitDecode(measured.decode);
  const prefillFit = fitPrefill(measured.prefill);
  const seeds = (values.seeds ?? '1').split(',').map(Number);
  const started = Date.now();
  const line = (name: string, r: ReturnType<typeof summary>) =>
    `  ${name.padEnd(22)} replica-h ${String(r.replicaHours.total).padStart(7)}  TTFT p90 ${r.ttftP90S.toFixed(3)} s  ITL p90 ${(r.itlP90S * 1000).toFixed(1)} ms  minutes in SLO ${(r.minutesWithinSlo * 100).toFixed(0)}%  ${r.meetsSlo ? 'meets SLO' : 'MISSES SLO'}`;
  process.stdout.write(
    `fit (${measured.device}): decode mean |err| ${(decodeFit.report.meanAbsRelError * 100).toFixed(1)}% max ${(decodeFit.report.maxAbsRelError * 100).toFixed(1)}%; prefill mean ${(prefillFit.report.meanAbsRelError * 100).toFixed(1)}% max ${(prefillFit.report.maxAbsRelError * 100).toFixed(1)}%\n`,
  );
  const outDir = values['out-dir'] ?? join(here, 'results');
  mkdirSync(outDir, { recursive: true });
  const runs = [];
  for (const seed of seeds) {
    const traceOptions: TraceOptions = {
      ...defaultTraceOptions,
      seed,
      ...(values.quick ? { durationS: 1200 } : {}),
    };
    const { requests, bursts, sweep, planner, best } = await runSeed(measured, traceOptions);
    if (best === null) {
      process.stderr.write(`seed ${seed}: no static split up to 40 replicas holds the SLOs\n`);
      return 1;
    }
    const saving = 1 - planner.result.replicaHours.total / best.result.replicaHours.total;
    const run = {
      seed,
      trace: {
        requests: requests.length,
        promptTokens: requests.reduce((s, r) => s + r.promptTokens, 0),
        outputTokens: requests.reduce((s, r) => s + r.outputTokens, 0),
        bursts,
      },
      planner: { ...summary(planner.result), scaleEvents: planner.decisions },
      bestStatic: { prefill: best.prefill, decode: best.decode, ...summary(best.result) },
      replicaHoursSaved: round(saving),
      sweep: sweep.runs.map((r) => ({ prefill: r.prefill, decode: r.decode, ...summary(r.result) })),
      plannerTimeline: planner.result.timeline,
    };
    runs.push(run);
    if (seed === seeds[0]) plots(outDir, measured, planner.result, best, bursts);
    process.stdout.write(
      [
        `seed ${seed}: ${requests.length} requests over ${traceOptions.durationS} s, ${bursts.length} bursts; static splits tried: ${sweep.runs.length}`,
        line('planner', run.planner),
        line(`static ${best.prefill}P:${best.decode}D (best)`, run.bestStatic),
        `  replica-hours saved vs the best static split: ${(saving * 100).toFixed(1)}%`,
        '',
      ].join('\n'),
    );
  }
  const results = {
    command: `node bench/planner/run.ts${values.quick ? ' --quick' : ''} --seeds ${seeds.join(',')}`,
    measuredFile: 'bench/cuda/results/run13-h200/bench_8b.txt',
    device: measured.device,
    fit: {
      decode: { model: 'ms = a + b*batch + c*batch*context/1000', ...decodeFit.model, ...decodeFit.report },
      prefill: { model: 'ms = p0 + p1*tokens + p2*tokens^2', ...prefillFit.model, ...prefillFit.report },
    },
    sim: simOptions(measured),
    slo,
    traceOptions: { ...defaultTraceOptions, ...(values.quick ? { durationS: 1200 } : {}) },
    plannerConfig: benchPlannerConfig(measured),
    runs,
    wallSeconds: round((Date.now() - started) / 1000),
  };
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(
    `wrote ${outDir}/results.json and plots (seed ${seeds[0]}) in ${results.wallSeconds} s\n`,
  );
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
