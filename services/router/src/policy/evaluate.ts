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
  // Arrays by candidate position, no per-candidate maps: a decision over 64 workers runs this on
  // every request, so it stays a few passes over arrays.
  const records: CandidateRecord[] = new Array(candidates.length);
  for (let i = 0; i < candidates.length; i++) {
    records[i] = { workerId: candidates[i]!.workerId, cost: null, terms: emptyTerms, excluded: null };
  }
  let remaining = candidates;
  /** Position in `candidates` of each of `remaining` (null while nothing was excluded). */
  let positions: number[] | null = null;
  for (const filter of spec.filters) {
    const excluded = filter.exclude(request, remaining, inputs);
    if (excluded.size === 0) continue;
    const keptPositions: number[] = [];
    const kept: C[] = [];
    for (let i = 0; i < remaining.length; i++) {
      const position = positions === null ? i : positions[i]!;
      const reason = excluded.get(remaining[i]!.workerId);
      if (reason === undefined) {
        kept.push(remaining[i]!);
        keptPositions.push(position);
      } else {
        records[position]!.excluded = `${filter.name}: ${reason}`;
      }
    }
    remaining = kept;
    positions = keptPositions;
  }
  const costs = new Array<number>(remaining.length).fill(0);
  const recordOf = (i: number): CandidateRecord => records[positions === null ? i : positions[i]!]!;
  for (const { scorer, weight } of spec.scorers) {
    const scores = scorer.score(request, remaining, inputs);
    for (let i = 0; i < scores.length; i++) {
      const score = scores[i]!;
      costs[i]! += weight * score.cost;
      const record = recordOf(i);
      // The first scorer's terms object becomes the record's (scorers return fresh objects).
      if (record.terms === emptyTerms) record.terms = score.terms;
      else Object.assign(record.terms, score.terms);
    }
  }
  const affinities = new Array<number>(remaining.length);
  for (let i = 0; i < remaining.length; i++) {
    const record = recordOf(i);
    record.cost = costs[i]!;
    affinities[i] = record.terms.cachedTokens ?? 0;
  }
  for (const record of records) if (record.terms === emptyTerms) record.terms = {};
  const chosen = pick(remaining, costs, spec.picker, affinities, spec.loadOf);
  return { chosen, records };
}

/** Marks a record no scorer has written yet (replaced by a fresh object before returning). */
const emptyTerms: Record<string, number> = Object.freeze({}) as Record<string, number>;
