// Percentiles and summary statistics. Percentiles interpolate linearly between closest ranks
// (numpy's default), which is what SGLang's and vLLM's benchmarks report.

export type Stats = {
  count: number;
  mean: number;
  std: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
};

/** p in [0, 100] over values sorted ascending; null when there are none. */
export function percentileSorted(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = (Math.min(Math.max(p, 0), 100) / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const loValue = sorted[lo] as number;
  const hiValue = sorted[hi] as number;
  return loValue + (hiValue - loValue) * (rank - lo);
}

export function percentile(values: readonly number[], p: number): number | null {
  return percentileSorted(
    [...values].sort((a, b) => a - b),
    p,
  );
}

export function summarize(values: readonly number[]): Stats | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((sum, v) => sum + v, 0) / sorted.length;
  const variance = sorted.reduce((sum, v) => sum + (v - mean) ** 2, 0) / sorted.length;
  return {
    count: sorted.length,
    mean,
    std: Math.sqrt(variance),
    min: sorted[0] as number,
    p50: percentileSorted(sorted, 50) as number,
    p90: percentileSorted(sorted, 90) as number,
    p99: percentileSorted(sorted, 99) as number,
    max: sorted[sorted.length - 1] as number,
  };
}

/** Empirical CDF points (value, fraction <= value) for plotting. */
export function cdfPoints(values: readonly number[]): Array<[number, number]> {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.map((v, i) => [v, (i + 1) / sorted.length]);
}
