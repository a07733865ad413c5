// When a worker's own fit of its step costs (LoadReport.step_cost) is trusted over the router's
// EWMA of first-token times: enough steps with prompt tokens, a positive cost per prompt token
// and a fit that explains most of the variance. Otherwise the EWMA (which also folds in queueing)
// stands, so a worker that just started or a fit that noise swamps steers nothing.
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
