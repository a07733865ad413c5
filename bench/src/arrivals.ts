// Request arrival times: gaps drawn from a gamma distribution with mean 1/rate (seeded). Shape
// `burstiness` = 1 is a Poisson process (exponential gaps); below 1 arrivals come in bursts,
// above 1 they are more even (vLLM's and SGLang's --burstiness). An infinite rate sends every
// request at once (then --max-concurrency alone shapes the load).
import type { Rng } from './rng.ts';

export function arrivalOffsetsMs(
  numArrivals: number,
  ratePerS: number,
  burstiness: number,
  rng: Rng,
): number[] {
  const offsets: number[] = new Array(numArrivals);
  const meanGapMs = 1000 / ratePerS;
  let atMs = 0;
  for (let i = 0; i < numArrivals; i++) {
    offsets[i] = atMs;
    if (!Number.isFinite(ratePerS)) continue;
    atMs += burstiness === 1 ? rng.exponential(meanGapMs) : rng.gamma(burstiness, meanGapMs / burstiness);
  }
  return offsets;
}

export function poissonArrivalOffsetsMs(numArrivals: number, ratePerS: number, rng: Rng): number[] {
  return arrivalOffsetsMs(numArrivals, ratePerS, 1, rng);
}
