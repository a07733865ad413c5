// The workers' own fits of their step costs (LoadReport.step_cost), as the router uses them (the
// registry for a worker's prefill rate, cache_aware for its whole predicted time, one rule):
// - a fit is trusted with enough steps with prompt tokens, a positive cost per prompt token and
//   most of the variance explained; an untrusted one steers nothing;
// - workers of one kind of hardware differ by noise only, so they share the pool's costs (the
//   mean of the trusted fits near the median); a worker whose own fit is `ownFitFactor` away
//   (another device) keeps its own, and one with no trusted fit yet takes the pool's;
// - with no trusted fit in the pool, the router's EWMA of first-token times stands.
import type { StepCostView } from './types.ts';

export interface StepCostTrust {
  /** Steps that computed prompt tokens, at least. */
  minPrefillSteps: number;
  /** R^2 of the fit, at least. */
  minRSquared: number;
}

export const defaultStepCostTrust: StepCostTrust = { minPrefillSteps: 8, minRSquared: 0.5 };

/** The fit, if it is to be used; else null. */
export function trustedStepCost(
  fit: StepCostView | null | undefined,
  trust: StepCostTrust = defaultStepCostTrust,
): StepCostView | null {
  if (fit === null || fit === undefined) return null;
  if (fit.numPrefillSteps < trust.minPrefillSteps) return null;
  if (!(fit.prefillMsPerToken > 0) || !Number.isFinite(fit.prefillMsPerToken)) return null;
  if (!(fit.rSquared >= trust.minRSquared)) return null;
  return fit;
}

/** A worker's fit counts over the pool's only this far from it (other hardware, not noise). */
const ownFitFactor = 3;

/** The coefficients that price a step: base + ms per prompt token + ms per decoding sequence. */
export interface StepCoefficients {
  baseMs: number;
  decodeMsPerSequence: number;
  prefillMsPerToken: number;
}

/**
 * The pool's step costs: the mean of the trusted fits within `ownFitFactor` of their median
 * prompt cost (an outlier, another device, does not drag the others'); null: none trusted.
 */
export function pooledStepCosts(fits: readonly (StepCostView | null | undefined)[]): StepCoefficients | null {
  const trusted: StepCoefficients[] = [];
  for (const fit of fits) {
    const usable = trustedStepCost(fit);
    if (usable !== null) trusted.push(usable);
  }
  if (trusted.length === 0) return null;
  const costs = trusted.map((fit) => fit.prefillMsPerToken).sort((a, b) => a - b);
  const median = costs[Math.floor((costs.length - 1) / 2)] as number;
  const alike = trusted.filter((fit) => !isOtherHardware(fit.prefillMsPerToken, median));
  const mean = (read: (fit: StepCoefficients) => number): number =>
    alike.reduce((sum, fit) => sum + read(fit), 0) / alike.length;
  return {
    baseMs: mean((fit) => fit.baseMs),
    decodeMsPerSequence: mean((fit) => fit.decodeMsPerSequence),
    prefillMsPerToken: mean((fit) => fit.prefillMsPerToken),
  };
}

/** A trusted own fit against the pool's: the pool's unless the own one is other hardware. */
export function ownOrPooled(fit: StepCoefficients, pooled: StepCoefficients | null): StepCoefficients {
  if (pooled === null) return fit;
  return isOtherHardware(fit.prefillMsPerToken, pooled.prefillMsPerToken) ? fit : pooled;
}

function isOtherHardware(msPerToken: number, poolMsPerToken: number): boolean {
  const ratio = msPerToken / poolMsPerToken;
  return ratio > ownFitFactor || ratio < 1 / ownFitFactor;
}
