// Runs one policy: filters remove candidates (with a reason), weighted scorers add up each
// remaining candidate's cost and record every term, the picker takes the cheapest. Shared by the
// routing policies (policies.ts) and the prefill-worker choice (prefill-policy.ts). No side effects.
import { type PickerParams, pick } from './picker.ts';
import type { Candidate, CandidateFilter, CandidateRecord, RoutingInputs, Scorer } from './types.ts';

export interface PolicySpec<C extends Candidate, R> {
  name: string;
  filters: readonly CandidateFilter<C, R>[];
  scorers: readonly { scorer: Scorer<C, R>; weight: number }[];
  picker: PickerParams;
  /** A candidate's load for the picker's tie order. */
  loadOf: (candidate: C) => number;
}

export interface Evaluation<C> {
  chosen: C | null;
  /** Every candidate, in input order: its cost and terms, or why it was excluded. */
  records: CandidateRecord[];
}

export function evaluate<C extends Candidate, R>(
  spec: PolicySpec<C, R>,
  request: R,
  candidates: readonly C[],
  inputs: RoutingInputs,
): Evaluation<C> {
  const records = new Map<string, CandidateRecord>();
  for (const candidate of candidates) {
    records.set(candidate.workerId, { workerId: candidate.workerId, cost: null, terms: {}, excluded: null });
  }
  let remaining = candidates;
  for (const filter of spec.filters) {
    const excluded = filter.exclude(request, remaining, inputs);
    if (excluded.size === 0) continue;
    for (const [workerId, reason] of excluded) records.get(workerId)!.excluded = `${filter.name}: ${reason}`;
    remaining = remaining.filter((candidate) => !excluded.has(candidate.workerId));
  }
  const costs = remaining.map(() => 0);
  for (const { scorer, weight } of spec.scorers) {
    const scores = scorer.score(request, remaining, inputs);
    scores.forEach((score, i) => {
      costs[i]! += weight * score.cost;
      Object.assign(records.get(remaining[i]!.workerId)!.terms, score.terms);
    });
  }
  remaining.forEach((candidate, i) => {
    records.get(candidate.workerId)!.cost = costs[i]!;
  });
  const affinities = remaining.map((candidate) => records.get(candidate.workerId)!.terms.cachedTokens ?? 0);
  const chosen = pick(remaining, costs, spec.picker, affinities, spec.loadOf);
  return { chosen, records: [...records.values()] };
}
