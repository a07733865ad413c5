// The test server's delay model: per request a TTFT and one gap per further token, each a
// base value plus uniform jitter in [-jitterMs, +jitterMs]; a seeded fraction of requests is
// "slow" (a longer TTFT, and independently a longer ITL) so goodput SLOs have a clear split.
import { createRng } from '../rng.ts';

export type DelayModel = {
  seed: number;
  ttftMs: number;
  itlMs: number;
  jitterMs: number;
  slowTtftFraction: number;
  slowTtftMs: number;
  slowItlFraction: number;
  slowItlMs: number;
};

export type PlannedDelays = { slowTtft: boolean; slowItl: boolean; ttftMs: number; itlMs: number[] };

/** Delays for the `sequence`-th request the server receives (deterministic per seed). */
export function planDelays(model: DelayModel, sequence: number, numOutputTokens: number): PlannedDelays {
  const rng = createRng((model.seed ^ Math.imul(sequence + 1, 0x9e3779b1)) >>> 0);
  const jitter = (): number => (rng.next() * 2 - 1) * model.jitterMs;
  const slowTtft = rng.next() < model.slowTtftFraction;
  const slowItl = rng.next() < model.slowItlFraction;
  const ttftMs = Math.max(0, (slowTtft ? model.slowTtftMs : model.ttftMs) + jitter());
  const itlMs: number[] = [];
  for (let i = 1; i < numOutputTokens; i++)
    itlMs.push(Math.max(0, (slowItl ? model.slowItlMs : model.itlMs) + jitter()));
  return { slowTtft, slowItl, ttftMs, itlMs };
}
