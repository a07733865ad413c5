// Scheduler overhead per step, the executor's cost excluded: the runtime's Scheduler is driven
// directly (schedule -> synthetic outputs -> postprocess) and only schedule() and postprocess()
// are timed, i.e. batch assembly (token ids, page tables), page allocation, radix-cache inserts,
// stop checks and chunk emission. Baselines in the same run: prefix cache on vs off, short vs
// long contexts.
//
//   node bench/runtime-scheduler/run.ts [--batch 256] [--steps 400] [--seed 0] [--out FILE]

import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import type { SequenceOutput } from '@tandem/executor';
import { defaultSampling } from '@tandem/executor';
import {
  defaultSchedulerOptions,
  type GenerateRequest,
  KvEventLog,
  type ScheduledBatch,
  Scheduler,
} from '@tandem/runtime';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '256' },
    steps: { type: 'string', default: '400' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string' },
  },
});
const batchSize = Number(values.batch);
const numSteps = Number(values.steps);
const seed = Number(values.seed);

function random(seedValue: number): () => number {
  let state = seedValue >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Scenario {
  name: string;
  promptLen: number;
  sharedPrefixLen: number;
  enablePrefixCache: boolean;
  /** Extra pool pages, filled with cached pages of finished requests first (every new page then evicts). */
  numStalePages: number;
}

interface Percentiles {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

function percentiles(samples: number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return {
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted.at(-1)!,
  };
}

const vocabSize = 32000;
const pageSize = 16;

const requestTemplate: GenerateRequest = {
  requestId: '',
  promptTokenIds: [],
  sampling: defaultSampling(),
  maxTokens: 1,
  minTokens: 0,
  stopTokenIds: [],
  ignoreEos: true,
  n: 1,
  logprobs: false,
  cacheNamespace: null,
  constraint: null,
};

/** The executor's part (not timed): one sampled token per sequence that asked for one. */
function fakeOutputs(batch: ScheduledBatch, step: number): SequenceOutput[] {
  return batch.items.map((item) => ({
    samples: item.sample
      ? [
          {
            index: item.numTokens - 1,
            tokenId: 3 + ((step * 7919 + item.startPos) % (vocabSize - 3)),
            logprob: -1,
            topLogprobs: [],
            logits: null,
            probs: null,
          },
        ]
      : [],
    targetLogprobs: null,
  }));
}

function run(scenario: Scenario) {
  const rng = random(seed);
  const randomTokens = (length: number) =>
    Array.from({ length }, () => 3 + Math.floor(rng() * (vocabSize - 3)));
  const maxTokens = numSteps + 64;
  const numWorkingPages =
    Math.ceil(((scenario.promptLen + maxTokens + pageSize) * batchSize) / pageSize) + 64;
  const numPages = numWorkingPages + scenario.numStalePages;
  const scheduler = new Scheduler(
    {
      ...defaultSchedulerOptions,
      maxRunningSequences: batchSize,
      maxBatchTokens: 16384,
      maxPrefillChunkTokens: 8192,
      enablePrefixCache: scenario.enablePrefixCache,
    },
    { numPages, pageSize, eosTokenIds: [2], vocabSize, maxModelLen: null },
    new KvEventLog(),
  );
  // Stale cache: finished requests of 20 full pages fill the pool beyond the working set, so
  // that pages for the measured run come from evictions once the free list runs dry.
  const numStaleRequests = Math.ceil(numPages / 20);
  for (let i = 0; i < (scenario.numStalePages > 0 ? numStaleRequests : 0); i++) {
    const promptTokenIds = randomTokens(20 * pageSize + 1);
    scheduler.addRequest(
      { ...requestTemplate, requestId: `stale${i}`, promptTokenIds },
      () => {},
      () => {},
    );
    for (let batch = scheduler.schedule(); batch !== null; batch = scheduler.schedule()) {
      scheduler.postprocess(batch, fakeOutputs(batch, 0));
    }
  }
  const shared = randomTokens(scenario.sharedPrefixLen);
  let numChunks = 0;
  for (let i = 0; i < batchSize; i++) {
    const promptTokenIds = [...shared, ...randomTokens(scenario.promptLen - shared.length)];
    scheduler.addRequest(
      { ...requestTemplate, requestId: `r${i}`, promptTokenIds, maxTokens },
      () => numChunks++,
      () => {},
    );
  }
  const decodeStepUs: number[] = [];
  const scheduleUs: number[] = [];
  const postprocessUs: number[] = [];
  let prefillUs = 0;
  let numPrefillSteps = 0;
  for (let step = 0; step < numSteps; step++) {
    const t0 = process.hrtime.bigint();
    const batch = scheduler.schedule();
    const t1 = process.hrtime.bigint();
    if (batch === null) break;
    const outputs = fakeOutputs(batch, step);
    const t2 = process.hrtime.bigint();
    scheduler.postprocess(batch, outputs);
    const t3 = process.hrtime.bigint();
    const us = Number(t1 - t0 + (t3 - t2)) / 1000;
    const isDecode = batch.items.length === batchSize && batch.numTokens === batchSize;
    if (isDecode) {
      decodeStepUs.push(us);
      scheduleUs.push(Number(t1 - t0) / 1000);
      postprocessUs.push(Number(t3 - t2) / 1000);
    } else {
      prefillUs += us;
      numPrefillSteps++;
    }
  }
  const load = scheduler.load();
  return {
    scenario,
    numDecodeSteps: decodeStepUs.length,
    decodeStepUs: percentiles(decodeStepUs.slice(20)), // after warm-up
    scheduleUs: percentiles(scheduleUs.slice(20)),
    postprocessUs: percentiles(postprocessUs.slice(20)),
    perSequenceUs: percentiles(decodeStepUs.slice(20).map((us) => us / batchSize)),
    numPrefillSteps,
    prefillTotalUs: prefillUs,
    numChunks,
    finalLoad: load,
  };
}

const scenarios: Scenario[] = [
  {
    name: 'prompt 512, cache off',
    promptLen: 512,
    sharedPrefixLen: 0,
    enablePrefixCache: false,
    numStalePages: 0,
  },
  {
    name: 'prompt 512, cache on',
    promptLen: 512,
    sharedPrefixLen: 0,
    enablePrefixCache: true,
    numStalePages: 0,
  },
  {
    name: 'prompt 512 (256 shared), cache on',
    promptLen: 512,
    sharedPrefixLen: 256,
    enablePrefixCache: true,
    numStalePages: 0,
  },
  {
    name: 'prompt 2048, cache on',
    promptLen: 2048,
    sharedPrefixLen: 0,
    enablePrefixCache: true,
    numStalePages: 0,
  },
  {
    name: 'prompt 512, cache full (evicting)',
    promptLen: 512,
    sharedPrefixLen: 0,
    enablePrefixCache: true,
    numStalePages: 20000,
  },
];

run(scenarios[0]!); // JIT warm-up, discarded
const results = scenarios.map(run);
const report = {
  bench: 'runtime-scheduler',
  command: `node bench/runtime-scheduler/run.ts --batch ${batchSize} --steps ${numSteps} --seed ${seed}`,
  machine: { cpu: cpus()[0]?.model ?? 'unknown', numCores: cpus().length, node: process.version },
  date: new Date().toISOString(),
  batchSize,
  numSteps,
  results,
};
for (const r of results) {
  const d = r.decodeStepUs;
  console.log(
    `${r.scenario.name.padEnd(36)} decode step at batch ${batchSize}: mean ${d.mean.toFixed(1)} us, p50 ${d.p50.toFixed(1)}, p99 ${d.p99.toFixed(1)} (schedule ${r.scheduleUs.mean.toFixed(1)} + postprocess ${r.postprocessUs.mean.toFixed(1)}); ${r.numDecodeSteps} steps`,
  );
}
if (values.out !== undefined) writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
