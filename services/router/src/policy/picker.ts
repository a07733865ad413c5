// Picks the cheapest candidate. Costs within a tolerance of the best count as tied; ties go to
// the larger prefix match (when the policy gives one: it keeps a burst of one prefix together and
// saves prefill compute), then the lower load (the policy's measure of it), then the least
// recently picked worker, then the smaller worker id, so the same inputs always give the same pick.
import type { Candidate } from './types.ts';

export interface PickerParams {
  /** Costs within this fraction of the best cost tie. */
  relativeTolerance: number;
  /** ... or within this absolute amount. */
  absoluteTolerance: number;
  /** Whether load breaks ties before pick order (round robin turns this off). */
  tieOnLoad: boolean;
}

export function pick<C extends Candidate>(
  candidates: readonly C[],
  costs: readonly number[],
  params: PickerParams,
  /** Per candidate, cached prompt tokens (higher wins a tie), or null. */
  affinities: readonly number[] | null,
  /** A candidate's load for the tie order (lower wins). */
  loadOf: (candidate: C) => number,
): C | null {
  if (candidates.length === 0) return null;
  let best = Number.POSITIVE_INFINITY;
  for (const cost of costs) best = Math.min(best, cost);
  const limit = best + Math.max(Math.abs(best) * params.relativeTolerance, params.absoluteTolerance);
  let chosen: C | null = null;
  let chosenCost = 0;
  let chosenAffinity = 0;
  candidates.forEach((candidate, i) => {
    const cost = costs[i]!;
    if (cost > limit) return;
    const affinity = affinities?.[i] ?? 0;
    const better =
      chosen === null ||
      affinity > chosenAffinity ||
      (affinity === chosenAffinity && isBetter(candidate, cost, chosen, chosenCost, params, loadOf));
    if (better) {
      chosen = candidate;
      chosenCost = cost;
      chosenAffinity = affinity;
    }
  });
  return chosen;
}

function isBetter<C extends Candidate>(
  candidate: C,
  cost: number,
  than: C,
  thanCost: number,
  params: PickerParams,
  loadOf: (candidate: C) => number,
): boolean {
  if (params.tieOnLoad) {
    const load = loadOf(candidate);
    const thanLoad = loadOf(than);
    if (load !== thanLoad) return load < thanLoad;
  }
  if (candidate.lastPickedSeq !== than.lastPickedSeq) return candidate.lastPickedSeq < than.lastPickedSeq;
  if (cost !== thanCost) return cost < thanCost;
  return candidate.workerId < than.workerId;
}
