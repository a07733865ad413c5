// Aggregates request records into the reported metrics. Only completed requests count toward
// latencies and throughput; goodput counts those that also meet every given SLO.
import type { RequestRecord } from './request-record.ts';
import { type Stats, summarize } from './stats.ts';

export type Slo = { ttftMs: number | null; tpotMs: number | null; e2eMs: number | null };

export type Goodput = { slo: Slo; numGood: number; requestsPerS: number; fractionGood: number };

export type Summary = {
  numCompleted: number;
  numFailed: number;
  durationS: number;
  /** Prompt tokens from usage (the planned length where a server sent no usage). */
  numInputTokens: number;
  numOutputTokens: number;
  /** Sum of usage.prompt_tokens_details.cached_tokens; null when no request reported it. */
  numCachedTokens: number | null;
  /** numCachedTokens / prompt tokens of the requests that reported it; null when none did. */
  cachedTokenShare: number | null;
  requestThroughputPerS: number;
  inputTokenThroughputPerS: number;
  outputTokenThroughputPerS: number;
  totalTokenThroughputPerS: number;
  goodput: Goodput | null;
  ttftMs: Stats | null;
  tpotMs: Stats | null;
  itlMs: Stats | null;
  e2eMs: Stats | null;
  /** Time-averaged number of requests in flight: sum of latencies / duration. */
  meanConcurrency: number;
};

export function meetsSlo(record: RequestRecord, slo: Slo): boolean {
  if (!record.ok) return false;
  if (slo.ttftMs !== null && (record.ttftMs === null || record.ttftMs > slo.ttftMs)) return false;
  // One output token has no TPOT; it cannot violate a TPOT SLO.
  if (slo.tpotMs !== null && record.tpotMs !== null && record.tpotMs > slo.tpotMs) return false;
  if (slo.e2eMs !== null && record.e2eMs > slo.e2eMs) return false;
  return true;
}

export function computeGoodput(records: readonly RequestRecord[], slo: Slo, durationS: number): Goodput {
  const numGood = records.filter((r) => meetsSlo(r, slo)).length;
  const numCompleted = records.filter((r) => r.ok).length;
  return {
    slo,
    numGood,
    requestsPerS: durationS > 0 ? numGood / durationS : 0,
    fractionGood: numCompleted > 0 ? numGood / numCompleted : 0,
  };
}

export function summarizeRun(records: readonly RequestRecord[], durationS: number, slo: Slo | null): Summary {
  const done = records.filter((r) => r.ok);
  const numInputTokens = done.reduce((sum, r) => sum + (r.numPromptTokens ?? r.numPlannedPromptTokens), 0);
  const numOutputTokens = done.reduce((sum, r) => sum + r.numOutputTokens, 0);
  const withCache = done.filter((r) => r.numCachedTokens !== null && r.numPromptTokens !== null);
  const numCachedTokens =
    withCache.length === 0 ? null : withCache.reduce((s, r) => s + (r.numCachedTokens ?? 0), 0);
  const cachedPromptTokens = withCache.reduce((s, r) => s + (r.numPromptTokens ?? 0), 0);
  const perS = (n: number): number => (durationS > 0 ? n / durationS : 0);
  const hasSlo = slo !== null && (slo.ttftMs !== null || slo.tpotMs !== null || slo.e2eMs !== null);
  return {
    numCompleted: done.length,
    numFailed: records.length - done.length,
    durationS,
    numInputTokens,
    numOutputTokens,
    numCachedTokens,
    cachedTokenShare:
      numCachedTokens === null || cachedPromptTokens === 0 ? null : numCachedTokens / cachedPromptTokens,
    requestThroughputPerS: perS(done.length),
    inputTokenThroughputPerS: perS(numInputTokens),
    outputTokenThroughputPerS: perS(numOutputTokens),
    totalTokenThroughputPerS: perS(numInputTokens + numOutputTokens),
    goodput: hasSlo ? computeGoodput(records, slo, durationS) : null,
    ttftMs: summarize(done.flatMap((r) => (r.ttftMs === null ? [] : [r.ttftMs]))),
    tpotMs: summarize(done.flatMap((r) => (r.tpotMs === null ? [] : [r.tpotMs]))),
    itlMs: summarize(done.flatMap((r) => r.itlMs)),
    e2eMs: summarize(done.map((r) => r.e2eMs)),
    meanConcurrency: durationS > 0 ? done.reduce((s, r) => s + r.e2eMs, 0) / 1000 / durationS : 0,
  };
}
