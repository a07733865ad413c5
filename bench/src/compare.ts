// Side-by-side table of several results (`tandem bench compare A.json B.json ...`); the last
// column of every numeric row compares each run with the first one.
import type { Summary } from './metrics.ts';
import type { BenchResult } from './result.ts';
import type { Stats } from './stats.ts';

type Row = { name: string; values: Array<number | null>; digits: number };

function statRows(name: string, pick: (s: Summary) => Stats | null, summaries: Summary[]): Row[] {
  const keys: Array<keyof Stats> = ['mean', 'p50', 'p90', 'p99', 'max'];
  return keys.map((k) => ({
    name: `${name} ${k} (ms)`,
    values: summaries.map((s) => pick(s)?.[k] ?? null),
    digits: 2,
  }));
}

export function compareRows(results: BenchResult[]): Row[] {
  const s = results.map((r) => r.summary);
  const row = (name: string, values: Array<number | null>, digits: number): Row => ({ name, values, digits });
  return [
    row(
      'completed requests',
      s.map((x) => x.numCompleted),
      0,
    ),
    row(
      'failed requests',
      s.map((x) => x.numFailed),
      0,
    ),
    row(
      'duration (s)',
      s.map((x) => x.durationS),
      3,
    ),
    row(
      'input tokens',
      s.map((x) => x.numInputTokens),
      0,
    ),
    row(
      'output tokens',
      s.map((x) => x.numOutputTokens),
      0,
    ),
    row(
      'cached-token share (%)',
      s.map((x) => (x.cachedTokenShare === null ? null : x.cachedTokenShare * 100)),
      1,
    ),
    row(
      'request throughput (req/s)',
      s.map((x) => x.requestThroughputPerS),
      3,
    ),
    row(
      'input throughput (tok/s)',
      s.map((x) => x.inputTokenThroughputPerS),
      1,
    ),
    row(
      'output throughput (tok/s)',
      s.map((x) => x.outputTokenThroughputPerS),
      1,
    ),
    row(
      'total throughput (tok/s)',
      s.map((x) => x.totalTokenThroughputPerS),
      1,
    ),
    row(
      'goodput (req/s)',
      s.map((x) => x.goodput?.requestsPerS ?? null),
      3,
    ),
    row(
      'good requests (%)',
      s.map((x) => (x.goodput === null ? null : x.goodput.fractionGood * 100)),
      1,
    ),
    row(
      'mean concurrency',
      s.map((x) => x.meanConcurrency),
      2,
    ),
    ...statRows('TTFT', (x) => x.ttftMs, s),
    ...statRows('TPOT', (x) => x.tpotMs, s),
    ...statRows('ITL', (x) => x.itlMs, s),
    ...statRows('E2E', (x) => x.e2eMs, s),
  ];
}

export function renderCompareTable(results: Array<{ label: string; result: BenchResult }>): string {
  const rows = compareRows(results.map((r) => r.result));
  const withRatio = results.length > 1;
  const header = ['metric', ...results.map((r) => r.label)];
  if (withRatio) header.push(`vs ${results[0]?.label ?? ''}`);
  const table: string[][] = [header];
  for (const row of rows) {
    const cells = [row.name, ...row.values.map((v) => (v === null ? '-' : v.toFixed(row.digits)))];
    if (withRatio) {
      const base = row.values[0] ?? null;
      cells.push(
        row.values
          .slice(1)
          .map((v) => (v === null || base === null || base === 0 ? '-' : `${(v / base).toFixed(2)}x`))
          .join(' '),
      );
    }
    table.push(cells);
  }
  const widths = header.map((_, c) => Math.max(...table.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
      .join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...table.slice(1).map(line)].join('\n') + '\n';
}
