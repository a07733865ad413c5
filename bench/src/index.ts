// @tandem/bench: a load generator for any OpenAI-compatible endpoint (workloads, metrics,
// plots, compare, sweep) and a test server with known delays to check it against.

export { discoverModel, runBench } from './bench.ts';
export { benchMain } from './cli.ts';
export { type ApiKind, sendRequest } from './client.ts';
export { renderCompareTable } from './compare.ts';
export * from './errors.ts';
export { computeGoodput, meetsSlo, type Slo, type Summary, summarizeRun } from './metrics.ts';
export type { RequestRecord } from './request-record.ts';
export { type BenchResult, type RunConfig, readResult, writeResult } from './result.ts';
export { createRng, type Rng } from './rng.ts';
export { type SseEvent, SseParser } from './sse.ts';
export { percentile, type Stats, summarize } from './stats.ts';
export { buildWorkload } from './workload/index.ts';
