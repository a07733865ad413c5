// The JSON written per run: the configuration that produced it, the summary, and every
// request's own measurements (so any metric can be recomputed or plotted later).
import { readFileSync, writeFileSync } from 'node:fs';
import { BenchResultFileError } from './errors.ts';
import type { Summary } from './metrics.ts';
import type { RequestRecord } from './request-record.ts';
import type { WorkloadSpec } from './workload/types.ts';

export type RunConfig = {
  label: string;
  baseUrl: string;
  endpoint: string;
  api: 'completions' | 'chat';
  /** As given: one model, or a mix (`a:3,b:1`). */
  model: string;
  /** The models requests go to and their shares (one entry, weight 1, for a single model). */
  models: ModelShare[];
  workload: WorkloadSpec;
  promptFormat: 'token-ids' | 'words';
  seed: number;
  /** Requests (conversations) per second; null for all at once. */
  requestRatePerS: number | null;
  /** Gamma shape of the arrival gaps (1: Poisson). */
  burstiness: number;
  maxConcurrency: number | null;
  ignoreEos: boolean;
  temperature: number;
  /** Short requests sent one by one before the measured run and left out of it. */
  warmupRequests: number;
};

/** A model of a mix and its relative share of the conversations. */
export type ModelShare = { name: string; weight: number };

export type BenchResult = {
  type: 'tandem-bench-result';
  version: 1;
  config: RunConfig;
  startedAt: string;
  summary: Summary;
  /** With several models: each one's own summary, by name. */
  perModel?: Record<string, Summary>;
  requests: RequestRecord[];
};

/** Config and summary indented for reading; one line per request to keep files small. */
export function writeResult(path: string, result: BenchResult): void {
  const { requests, ...head } = result;
  const headText = JSON.stringify(head, null, 2).replace(/\n}$/, '');
  const requestLines = requests.map((r) => `    ${JSON.stringify(r)}`).join(',\n');
  writeFileSync(path, `${headText},\n  "requests": [\n${requestLines}\n  ]\n}\n`);
}

export function readResult(path: string): BenchResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new BenchResultFileError(`cannot read bench result ${path}`, { cause });
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    (parsed as { type?: unknown }).type !== 'tandem-bench-result'
  ) {
    throw new BenchResultFileError(`${path} is not a tandem bench result`);
  }
  return parsed as BenchResult;
}
