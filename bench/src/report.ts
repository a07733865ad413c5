// The human-readable summary printed after a run (the JSON result holds the same numbers).
import type { Summary } from './metrics.ts';
import type { RunConfig } from './result.ts';
import type { Stats } from './stats.ts';

function statLine(name: string, stats: Stats | null): string {
  if (stats === null) return `${name.padEnd(10)} -`;
  const f = (v: number): string => v.toFixed(2).padStart(9);
  return `${name.padEnd(10)} mean ${f(stats.mean)}  p50 ${f(stats.p50)}  p90 ${f(stats.p90)}  p99 ${f(stats.p99)}  max ${f(stats.max)}`;
}

export function renderSummary(config: RunConfig, s: Summary, perModel?: Record<string, Summary>): string {
  const rate = config.requestRatePerS === null ? 'inf' : String(config.requestRatePerS);
  const lines = [
    `== ${config.label}: ${config.workload.type} against ${config.baseUrl}${config.endpoint} (model ${config.model})`,
    `rate ${rate} req/s, max concurrency ${config.maxConcurrency ?? 'none'}, seed ${config.seed}`,
    `completed ${s.numCompleted}, failed ${s.numFailed}, duration ${s.durationS.toFixed(3)} s, mean concurrency ${s.meanConcurrency.toFixed(2)}`,
    `input tokens ${s.numInputTokens}, output tokens ${s.numOutputTokens}, cached-token share ${
      s.cachedTokenShare === null ? 'not reported' : `${(s.cachedTokenShare * 100).toFixed(1)}%`
    }`,
    `throughput: ${s.requestThroughputPerS.toFixed(3)} req/s, input ${s.inputTokenThroughputPerS.toFixed(1)} tok/s, output ${s.outputTokenThroughputPerS.toFixed(1)} tok/s, total ${s.totalTokenThroughputPerS.toFixed(1)} tok/s`,
  ];
  if (s.goodput !== null) {
    const { slo } = s.goodput;
    const parts = [
      slo.ttftMs === null ? null : `TTFT <= ${slo.ttftMs} ms`,
      slo.tpotMs === null ? null : `TPOT <= ${slo.tpotMs} ms`,
      slo.e2eMs === null ? null : `E2E <= ${slo.e2eMs} ms`,
    ].filter((p) => p !== null);
    lines.push(
      `goodput (${parts.join(', ')}): ${s.goodput.requestsPerS.toFixed(3)} req/s, ${s.goodput.numGood} good (${(s.goodput.fractionGood * 100).toFixed(1)}%)`,
    );
  }
  lines.push(
    statLine('TTFT ms', s.ttftMs),
    statLine('TPOT ms', s.tpotMs),
    statLine('ITL ms', s.itlMs),
    statLine('E2E ms', s.e2eMs),
  );
  for (const [name, m] of Object.entries(perModel ?? {})) {
    lines.push(
      `model ${name}: completed ${m.numCompleted}, failed ${m.numFailed}, output ${m.outputTokenThroughputPerS.toFixed(1)} tok/s, ` +
        `TTFT p50 ${m.ttftMs?.p50.toFixed(2) ?? '-'} ms, TPOT p50 ${m.tpotMs?.p50.toFixed(2) ?? '-'} ms`,
    );
  }
  return `${lines.join('\n')}\n`;
}
