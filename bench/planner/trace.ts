// A seeded bursty trace: a steady base load with bursts of two kinds, prompt-heavy (long
// prompts, short answers: the prefill pool's problem) and answer-heavy (short prompts, long
// answers: the decode pool's), so the right P:D split changes over time.
import { createRng } from '../src/rng.ts';

export interface TraceRequest {
  arrivalS: number;
  promptTokens: number;
  outputTokens: number;
}

export interface Burst {
  kind: 'prompt-heavy' | 'answer-heavy';
  startS: number;
  endS: number;
  /** Peak extra requests per second, reached `rampS` after the start; it falls over the last `rampS`. */
  ratePerS: number;
  rampS: number;
}

export interface TraceOptions {
  seed: number;
  /** Base load only, before the measured part (so no run starts cold); not measured. */
  warmupS: number;
  /** The measured part, after the warm-up. */
  durationS: number;
  baseRatePerS: number;
  /** Mean seconds between burst starts, and a burst's length range. */
  meanBurstGapS: number;
  burstS: [number, number];
  /** A burst adds this many requests per second at its peak (range) ... */
  burstRatePerS: [number, number];
  /** ... reached after this ramp (traffic grows over a minute or two, it does not jump). */
  rampS: number;
}

export const defaultTraceOptions: TraceOptions = {
  seed: 1,
  warmupS: 300,
  durationS: 3600,
  baseRatePerS: 20,
  meanBurstGapS: 420,
  burstS: [120, 300],
  burstRatePerS: [30, 60],
  rampS: 90,
};

function logNormal(
  rng: ReturnType<typeof createRng>,
  median: number,
  sigma: number,
  lo: number,
  hi: number,
): number {
  return Math.round(Math.min(hi, Math.max(lo, median * Math.exp(sigma * rng.normal()))));
}

export function makeTrace(options: TraceOptions): { requests: TraceRequest[]; bursts: Burst[] } {
  const rng = createRng(options.seed);
  const bursts: Burst[] = [];
  const end = options.warmupS + options.durationS;
  let t = options.warmupS + rng.exponential(options.meanBurstGapS / 2);
  let kind: Burst['kind'] = rng.next() < 0.5 ? 'prompt-heavy' : 'answer-heavy';
  while (t < end) {
    const length = options.burstS[0] + rng.next() * (options.burstS[1] - options.burstS[0]);
    const rate =
      options.burstRatePerS[0] + rng.next() * (options.burstRatePerS[1] - options.burstRatePerS[0]);
    bursts.push({ kind, startS: t, endS: Math.min(end, t + length), ratePerS: rate, rampS: options.rampS });
    t += length + rng.exponential(options.meanBurstGapS);
    kind = kind === 'prompt-heavy' ? 'answer-heavy' : 'prompt-heavy';
  }
  const requests: TraceRequest[] = [];
  // The base load: chat-like lengths.
  for (
    let s = rng.exponential(1 / options.baseRatePerS);
    s < end;
    s += rng.exponential(1 / options.baseRatePerS)
  ) {
    requests.push({
      arrivalS: s,
      promptTokens: logNormal(rng, 800, 0.8, 16, 8192),
      outputTokens: logNormal(rng, 180, 0.7, 4, 1024),
    });
  }
  for (const burst of bursts) {
    // Thinning: candidates at the peak rate, kept with probability rate(t) / peak.
    for (
      let s = burst.startS + rng.exponential(1 / burst.ratePerS);
      s < burst.endS;
      s += rng.exponential(1 / burst.ratePerS)
    ) {
      const ramp = Math.min(1, (s - burst.startS) / burst.rampS, (burst.endS - s) / burst.rampS);
      if (rng.next() >= ramp) continue;
      requests.push(
        burst.kind === 'prompt-heavy'
          ? {
              arrivalS: s,
              promptTokens: logNormal(rng, 3500, 0.5, 256, 8192),
              outputTokens: logNormal(rng, 60, 0.6, 4, 512),
            }
          : {
              arrivalS: s,
              promptTokens: logNormal(rng, 300, 0.6, 16, 4096),
              outputTokens: logNormal(rng, 600, 0.5, 16, 2048),
            },
      );
    }
  }
  requests.sort((a, b) => a.arrivalS - b.arrivalS);
  return { requests, bursts };
}
