// Picks the cheapest candidate. Costs within a tolerance of the best count as tied; ties go to
// the larger prefix match (when the policy gives one: it keeps a burst of one prefix together and
// saves prefill compute), then the lower load, then the least recently picked worker, then the
// smaller worker id, so the same inputs always give the same pick.
import { loadOf } from './scorers.ts';
import type { WorkerView } from './types.ts';

export interface PickerParams {
  /** Costs within this fraction of the best cost tie. */
  relativeTolerance: number;
  /** ... or within this absolute amount. */
  absoluteTolerance: number;
  /** Whether load breaks ties before pick order (round robin turns this off). */
  tieOnLoad: boolean;
}

export function pick(
  candidates: readonly WorkerView[],
  costs: readonly number[],
  params: PickerParams,
  /** Per candidate, cached prompt tokens (higher wins a tie), or null. */
  affinities: readonly number[] | null = null,
): WorkerView | null {
  if (candidates.length === 0) return null;
  let best = Number.POSITIVE_INFINITY;
  for (const cost of costs) best = Math.min(best, cost);
  const limit = best + Math.max(Math.abs(best) * params.relativeTolerance, params.absoluteTolerance);
  let chosen: WorkerView | null = null;
  let chosenCost = 0;
  let chosenAffinity = 0;
  candidates.forEach((worker, i) => {
    const cost = costs[i]!;
    if (cost > limit) return;
    const affinity = affinities?.[i] ?? 0;
    const better =
      chosen === null ||
      affinity > chosenAffinity ||
      (affinity === chosenAffinity && isBetter(worker, cost, chosen, chosenCost, params));
    if (better) {
      chosen = worker;
      chosenCost = cost;
      chosenAffinity = affinity;
    }
  });
  return chosen;
}

function isBetter(
  worker: WorkerView,
  cost: number,
  than: WorkerView,
  thanCost: number,
  params: PickerParams,
): boolean {
  if (params.tieOnLoad) {
    const load = loadOf(worker);
    const thanLoad = loadOf(than);
    if (load !== thanLoad) return load < thanLoad;
  }
  if (worker.lastPickedSeq !== than.lastPickedSeq) return worker.lastPickedSeq < than.lastPickedSeq;
  if (cost !== thanCost) return cost < thanCost;
  return worker.workerId < than.workerId;
}
