// Request arrival times: a Poisson process at `ratePerS` (exponential gaps, seeded), or every
// request at once when the rate is infinite (then --max-concurrency alone shapes the load).
import type { Rng } from './rng.ts';

export function poissonArrivalOffsetsMs(numArrivals: number, ratePerS: number, rng: Rng): number[] {
  const offsets: number[] = new Array(numArrivals);
  let atMs = 0;
  for (let i = 0; i < numArrivals; i++) {
    offsets[i] = atMs;
    if (Number.isFinite(ratePerS)) atMs += rng.exponential(1000 / ratePerS);
  }
  return offsets;
}
