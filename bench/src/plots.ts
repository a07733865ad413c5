// The bench's standard plots: latency CDFs of one or more runs, and throughput / goodput
// against request rate for a sweep.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Summary } from './metrics.ts';
import type { BenchResult } from './result.ts';
import { cdfPoints } from './stats.ts';
import { renderBarChart, renderLineChart } from './svg.ts';

type LatencyMetric = { key: 'ttftMs' | 'tpotMs' | 'itlMs' | 'e2eMs'; title: string; file: string };

const LATENCY_METRICS: LatencyMetric[] = [
  { key: 'ttftMs', title: 'Time to first token', file: 'ttft-cdf.svg' },
  { key: 'tpotMs', title: 'Time per output token', file: 'tpot-cdf.svg' },
  { key: 'itlMs', title: 'Inter-token latency', file: 'itl-cdf.svg' },
  { key: 'e2eMs', title: 'End-to-end latency', file: 'e2e-cdf.svg' },
];

function latencyValues(result: BenchResult, key: LatencyMetric['key']): number[] {
  const done = result.requests.filter((r) => r.ok);
  if (key === 'itlMs') return done.flatMap((r) => r.itlMs);
  return done.flatMap((r) => {
    const v = r[key];
    return v === null ? [] : [v];
  });
}

/** At most `maxPoints` CDF points (evenly spaced in rank, the last kept) so plots stay small. */
export function thinCdf(points: Array<[number, number]>, maxPoints: number): Array<[number, number]> {
  if (points.length <= maxPoints) return points;
  const step = points.length / maxPoints;
  const thinned: Array<[number, number]> = [];
  for (let i = 0; i < maxPoints; i++) thinned.push(points[Math.floor(i * step)] as [number, number]);
  thinned.push(points[points.length - 1] as [number, number]);
  return thinned;
}

/** Writes one CDF per latency metric, every result overlaid; returns the files written. */
export function writeLatencyCdfs(
  results: Array<{ label: string; result: BenchResult }>,
  dir: string,
  prefix: string,
): string[] {
  return LATENCY_METRICS.map((metric) => {
    const svg = renderLineChart({
      title: `${metric.title} (CDF)`,
      xLabel: `${metric.title} (ms)`,
      yLabel: 'fraction of requests',
      series: results.map(({ label, result }) => ({
        name: label,
        points: thinCdf(cdfPoints(latencyValues(result, metric.key)), 400),
      })),
      step: true,
      markers: false,
      width: 760,
      height: 420,
    });
    const path = join(dir, `${prefix}${metric.file}`);
    writeFileSync(path, svg);
    return path;
  });
}

export type SweepPoint = { requestRatePerS: number; summary: Summary };

/** Throughput and goodput against offered rate, one line per sweep. */
export function writeSweepPlots(
  sweeps: Array<{ label: string; points: SweepPoint[] }>,
  dir: string,
  prefix: string,
): string[] {
  const requests = renderLineChart({
    title: 'Request throughput and goodput vs offered rate',
    xLabel: 'offered request rate (req/s)',
    yLabel: 'req/s',
    series: sweeps.flatMap(({ label, points }) => [
      {
        name: `${label} throughput`,
        points: points.map((p): [number, number] => [p.requestRatePerS, p.summary.requestThroughputPerS]),
      },
      {
        name: `${label} goodput`,
        points: points.flatMap(
          (p): Array<[number, number]> =>
            p.summary.goodput === null ? [] : [[p.requestRatePerS, p.summary.goodput.requestsPerS]],
        ),
      },
    ]),
    step: false,
    markers: true,
    width: 760,
    height: 420,
  });
  const tokens = renderLineChart({
    title: 'Output token throughput vs offered rate',
    xLabel: 'offered request rate (req/s)',
    yLabel: 'output tokens/s',
    series: sweeps.map(({ label, points }) => ({
      name: label,
      points: points.map((p): [number, number] => [p.requestRatePerS, p.summary.outputTokenThroughputPerS]),
    })),
    step: false,
    markers: true,
    width: 760,
    height: 420,
  });
  const files: Array<[string, string]> = [
    [join(dir, `${prefix}throughput-goodput-vs-rate.svg`), requests],
    [join(dir, `${prefix}output-throughput-vs-rate.svg`), tokens],
  ];
  for (const [path, svg] of files) writeFileSync(path, svg);
  return files.map(([path]) => path);
}

/** Throughput of several runs side by side (e.g. one per routing policy). */
export function writeThroughputBars(
  results: Array<{ label: string; result: BenchResult }>,
  dir: string,
  prefix: string,
): string[] {
  const s = results.map((r) => r.result.summary);
  const requests = renderBarChart({
    title: 'Request throughput and goodput',
    yLabel: 'req/s',
    groups: [
      { name: 'request throughput', values: s.map((x) => x.requestThroughputPerS) },
      { name: 'goodput', values: s.map((x) => x.goodput?.requestsPerS ?? Number.NaN) },
    ],
    seriesNames: results.map((r) => r.label),
    width: 760,
    height: 420,
  });
  const tokens = renderBarChart({
    title: 'Token throughput',
    yLabel: 'tokens/s',
    groups: [
      { name: 'input', values: s.map((x) => x.inputTokenThroughputPerS) },
      { name: 'output', values: s.map((x) => x.outputTokenThroughputPerS) },
    ],
    seriesNames: results.map((r) => r.label),
    width: 760,
    height: 420,
  });
  const files: Array<[string, string]> = [
    [join(dir, `${prefix}request-throughput.svg`), requests],
    [join(dir, `${prefix}token-throughput.svg`), tokens],
  ];
  for (const [path, svg] of files) writeFileSync(path, svg);
  return files.map(([path]) => path);
}
