// Constrained and unconstrained requests in one batch, on the engine with the real CPU executor:
// the unconstrained outputs must not change (golden), and the throughput cost of the constrained
// ones is measured against a baseline of the same run. Two models:
//   demo  the trained demo checkpoint (4,096 tokens), its golden prompts;
//   128k  a 2-layer random model with the 128,256-token byte-level vocabulary of vocab-128k.ts
//         (written once to the temp dir), where the mask and the masked sampling are largest next
//         to the rest of a (tiny) step: a pessimistic ratio for a real model's step.
// Per model, U unconstrained greedy requests (ignore_eos) run beside C constrained ones
// (temperature 1, two JSON Schemas, a regex and a choice, compiled beforehand on a CompilerThread). The
// baseline run replaces each constrained request by an unconstrained one at temperature 1 with
// the same prompt and exactly the number of tokens its constrained twin produced (ignore_eos), so
// both runs schedule the same batch shapes step by step; runs alternate, the median is reported.
// Also: the longest pause in an unconstrained stream while a large schema compiles, on the
// CompilerThread versus on the engine's own thread (GrammarCompiler.compile, synchronous).
//   node bench/structured/batch.ts [--out bench/structured/results/batch.json] [--reps 3]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultSampling, type SamplingParams } from '@tandem/executor';
import { Engine, type GenerateRequest, type TokenConstraint, type TokenMatcher } from '@tandem/runtime';
import { CompilerThread, type ConstraintSpec, GrammarCompiler, Vocabulary } from '@tandem/structured';
import { writeRandomQwen2Checkpoint } from '../executor-cpu/checkpoint.ts';
import { vocabulary128k } from './vocab-128k.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    reps: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
  },
});
const reps = Number(values.reps);
const numThreads = Number(values.threads);
const repoRoot = join(import.meta.dirname, '..', '..');

const specs: ConstraintSpec[] = [
  {
    type: 'json_schema',
    schema: {
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 16 },
        age: { type: 'integer', minimum: 0, maximum: 120 },
        born: { type: 'string', format: 'date' },
        tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, maxItems: 3 },
        note: { anyOf: [{ type: 'string', maxLength: 12 }, { type: 'null' }] },
      },
      required: ['name', 'age', 'born', 'tags', 'note'],
      additionalProperties: false,
    },
  },
  {
    type: 'json_schema',
    schema: {
      type: 'array',
      items: {
        type: 'object',
        properties: { id: { type: 'integer', minimum: 1, maximum: 999 }, ok: { type: 'boolean' } },
        required: ['id', 'ok'],
        additionalProperties: false,
      },
      minItems: 2,
      maxItems: 4,
    },
  },
  { type: 'regex', pattern: '[A-Z][a-z]{2,8}( [A-Z][a-z]{2,8}){1,3}, [0-9]{4}' },
  { type: 'choice', choices: ['positive', 'negative', 'neutral', 'mixed feelings'] },
];

/** A 60-property object: seconds to compile at 128k (every state classified against the trie). */
const largeSpec: ConstraintSpec = {
  type: 'json_schema',
  schema: {
    type: 'object',
    properties: Object.fromEntries(
      Array.from({ length: 60 }, (_, i) => [
        `field_${i}`,
        i % 3 === 0
          ? { type: 'string', maxLength: 24 }
          : i % 3 === 1
            ? { type: 'integer', minimum: -i, maximum: 1000 + i }
            : { enum: [`v${i}`, `w${i}`, null] },
      ]),
    ),
    required: Array.from({ length: 60 }, (_, i) => `field_${i}`),
    additionalProperties: false,
  },
};

interface Model {
  name: string;
  dir: string;
  /** Prompts of the unconstrained requests, and their golden greedy output when known. */
  plain: { prompt: number[]; golden: number[] | null }[];
  constrainedPrompts: number[][];
  maxPlainTokens: number;
}

function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function demoModel(): Model {
  const dir = join(repoRoot, 'deploy', 'models', 'tandem-demo-code');
  const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as {
    text_cases: { prompt_ids: number[]; greedy_ids: number[] }[];
  };
  const cases = [...golden.text_cases, ...golden.text_cases].slice(0, 8);
  return {
    name: 'demo (4,096 tokens)',
    dir,
    plain: cases.map((c) => ({ prompt: c.prompt_ids, golden: c.greedy_ids })),
    constrainedPrompts: golden.text_cases.map((c) => c.prompt_ids),
    maxPlainTokens: 48,
  };
}

/** A 2-layer random Qwen2-shaped model over the 128,256-token vocabulary (written once). */
function model128k(): Model {
  const dir = join(tmpdir(), 'tandem-structured-batch-128k');
  const { json } = vocabulary128k(repoRoot);
  if (!existsSync(join(dir, 'model.safetensors'))) {
    mkdirSync(dir, { recursive: true });
    writeRandomQwen2Checkpoint(dir, {
      hiddenSize: 128,
      numLayers: 2,
      numHeads: 2,
      numKvHeads: 1,
      intermediateSize: 256,
      vocabSize: 128_256,
    });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ ...config, bos_token_id: 128000, eos_token_id: 128001 }),
    );
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|end_of_text|>' }));
  }
  const random = seededRandom(7);
  const prompt = (n: number) => Array.from({ length: n }, () => Math.floor(random() * 128_000));
  return {
    name: '128k (128,256 tokens, random 2-layer)',
    dir,
    plain: Array.from({ length: 8 }, (_, i) => ({ prompt: prompt(20 + i * 7), golden: null })),
    constrainedPrompts: Array.from({ length: 4 }, (_, i) => prompt(30 + i)),
    maxPlainTokens: 48,
  };
}

/** Wraps a compiled constraint so that the bench can time its matchers' calls. */
function timed(
  constraint: TokenConstraint,
  clock: { fillMs: number; acceptMs: number; fills: number },
): TokenConstraint {
  return {
    maskWords: constraint.maskWords,
    newMatcher(): TokenMatcher {
      const inner = constraint.newMatcher();
      return {
        fillNextTokenBitmask(mask) {
          const t = performance.now();
          const count = inner.fillNextTokenBitmask(mask);
          clock.fillMs += performance.now() - t;
          clock.fills++;
          return count;
        },
        acceptToken(id) {
          const t = performance.now();
          const ok = inner.acceptToken(id);
          clock.acceptMs += performance.now() - t;
          return ok;
        },
        isCompleted: () => inner.isCompleted(),
      };
    },
  };
}

const greedy = (): SamplingParams => defaultSampling();
const stochastic = (seed: number): SamplingParams => ({ ...defaultSampling(), temperature: 1, seed });

function request(
  id: string,
  prompt: number[],
  maxTokens: number,
  extra: Partial<GenerateRequest>,
): GenerateRequest {
  return {
    requestId: id,
    promptTokenIds: prompt,
    sampling: greedy(),
    maxTokens,
    minTokens: 0,
    stopTokenIds: [],
    ignoreEos: true,
    n: 1,
    logprobs: false,
    cacheNamespace: null,
    constraint: null,
    ...extra,
  };
}

async function collect(
  engine: Engine,
  r: GenerateRequest,
): Promise<{ tokens: number[]; finish: string | null }> {
  const tokens: number[] = [];
  let finish: string | null = null;
  for await (const chunk of engine.generate(r)) {
    tokens.push(...chunk.tokenIds);
    finish = chunk.finishReason ?? finish;
  }
  return { tokens, finish };
}

interface RunResult {
  wallMs: number;
  tokens: number;
  tokensPerS: number;
  plainOutputs: number[][];
  constrainedLengths: number[];
  fillMs: number;
  acceptMs: number;
  fills: number;
  steps: number;
}

async function runBatch(
  engine: Engine,
  model: Model,
  constraints: TokenConstraint[],
  mode: 'mixed' | 'baseline',
  lengths: number[],
  rep: number,
): Promise<RunResult> {
  const clock = { fillMs: 0, acceptMs: 0, fills: 0 };
  const stepsBefore = engine.stats().numSteps;
  const plain = model.plain.map((p, i) =>
    collect(
      engine,
      request(`${mode}-${rep}-p${i}`, p.prompt, model.maxPlainTokens, { cacheNamespace: `${mode}-${rep}` }),
    ),
  );
  const numConstrained = constraints.length * model.constrainedPrompts.length;
  const constrained = Array.from({ length: numConstrained }, (_, i) => {
    const prompt = model.constrainedPrompts[i % model.constrainedPrompts.length] as number[];
    const constraint = constraints[Math.floor(i / model.constrainedPrompts.length)] as TokenConstraint;
    const id = `${mode}-${rep}-c${i}`;
    const extra = { sampling: stochastic(100 + i), cacheNamespace: `${mode}-${rep}` };
    return mode === 'mixed'
      ? collect(
          engine,
          request(id, prompt, 400, { ...extra, constraint: timed(constraint, clock), ignoreEos: false }),
        )
      : collect(engine, request(id, prompt, lengths[i] as number, extra));
  });
  const start = performance.now();
  const [plainOut, constrainedOut] = await Promise.all([Promise.all(plain), Promise.all(constrained)]);
  const wallMs = performance.now() - start;
  for (const out of constrainedOut) {
    if (mode === 'mixed' && out.finish !== 'stop')
      throw new Error(
        `a constrained request ended with ${out.finish} after ${out.tokens.length} tokens: ${constrainedOut.indexOf(out)}`,
      );
  }
  const tokens = [...plainOut, ...constrainedOut].reduce((n, o) => n + o.tokens.length, 0);
  return {
    wallMs,
    tokens,
    tokensPerS: (tokens / wallMs) * 1000,
    plainOutputs: plainOut.map((o) => o.tokens),
    constrainedLengths: constrainedOut.map((o) => o.tokens.length),
    ...clock,
    steps: engine.stats().numSteps - stepsBefore,
  };
}

const withoutOutputs = ({ plainOutputs: _, ...rest }: RunResult) => rest;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** The longest gap between chunks of unconstrained streams while `work` runs. */
async function longestGap(
  engine: Engine,
  model: Model,
  tag: string,
  work: () => Promise<unknown>,
): Promise<number> {
  let last = performance.now();
  let gap = 0;
  let running = true;
  const streams = model.plain.slice(0, 4).map(async (p, i) => {
    for await (const _ of engine.generate(request(`${tag}-${i}`, p.prompt, 4000, { cacheNamespace: tag }))) {
      const now = performance.now();
      if (running) gap = Math.max(gap, now - last);
      last = now;
      if (!running) break;
    }
  });
  await new Promise((r) => setTimeout(r, 300)); // the batch is decoding
  last = performance.now();
  gap = 0;
  await work();
  await new Promise((r) => setTimeout(r, 100));
  running = false;
  await Promise.all(streams);
  return gap;
}

const results: Record<string, unknown>[] = [];
for (const model of [demoModel(), model128k()]) {
  console.log(`== ${model.name}`);
  const thread = await CompilerThread.start(model.dir);
  const compileStart = performance.now();
  const constraints = await Promise.all(specs.map((spec) => thread.compile(spec)));
  const compileMs = performance.now() - compileStart;
  const engine = await Engine.create({
    executor: { modelDir: model.dir, pageSize: 16, numPages: 2048, numThreads },
    scheduler: { maxRunningSequences: 64 },
  });
  // Warm-up (JIT, first masks of each state), then alternate mixed / baseline.
  const warm = await runBatch(engine, model, constraints, 'mixed', [], -1);
  await runBatch(engine, model, constraints, 'baseline', warm.constrainedLengths, -1);
  const mixed: RunResult[] = [];
  const baseline: RunResult[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const m = await runBatch(engine, model, constraints, 'mixed', [], rep);
    const b = await runBatch(engine, model, constraints, 'baseline', m.constrainedLengths, rep);
    mixed.push(m);
    baseline.push(b);
    // The unconstrained outputs are the same in both runs, and equal the golden ones where known.
    for (const [i, out] of m.plainOutputs.entries()) {
      const golden = model.plain[i]?.golden ?? b.plainOutputs[i];
      if (
        JSON.stringify(out) !== JSON.stringify(golden) ||
        JSON.stringify(out) !== JSON.stringify(b.plainOutputs[i])
      )
        throw new Error(`${model.name}: unconstrained request ${i} changed beside constrained ones`);
    }
    console.log(
      `rep ${rep}: mixed ${round(m.tokensPerS)} tok/s (${m.tokens} tokens, ${m.steps} steps, masks ${round(m.fillMs)} ms, ` +
        `accepts ${round(m.acceptMs)} ms); baseline ${round(b.tokensPerS)} tok/s (${b.tokens} tokens, ${b.steps} steps)`,
    );
  }
  const vocabulary = await Vocabulary.load(model.dir);
  const mainCompiler = new GrammarCompiler(vocabulary);
  const gapThread = await longestGap(engine, model, 'gap-thread', () => thread.compile(largeSpec));
  const gapMain = await longestGap(engine, model, 'gap-main', async () => mainCompiler.compile(largeSpec));
  const gapNone = await longestGap(engine, model, 'gap-none', () => new Promise((r) => setTimeout(r, 500)));
  const m = median(mixed.map((r) => r.tokensPerS));
  const b = median(baseline.map((r) => r.tokensPerS));
  const fills = mixed.reduce((n, r) => n + r.fills, 0);
  const fillMs = mixed.reduce((n, r) => n + r.fillMs, 0);
  const acceptMs = mixed.reduce((n, r) => n + r.acceptMs, 0);
  const result = {
    model: model.name,
    vocabSize: vocabulary.size,
    unconstrained: model.plain.length,
    constrained: specs.length * model.constrainedPrompts.length,
    constraintCompileMs: round(compileMs),
    mixedTokensPerS: round(m),
    baselineTokensPerS: round(b),
    throughputRatio: round(m / b, 3),
    maskFillUsPerSample: round((fillMs / fills) * 1000),
    acceptUsPerSample: round((acceptMs / fills) * 1000),
    // The engine thread's share of a step spent on constraints (masks + accepts), mixed runs.
    mixedStepMs: round(mixed.reduce((n, r) => n + r.wallMs, 0) / mixed.reduce((n, r) => n + r.steps, 0), 2),
    constraintMsPerStep: round((fillMs + acceptMs) / mixed.reduce((n, r) => n + r.steps, 0), 3),
    unconstrainedOutputsUnchanged: true,
    longestStreamGapMs: {
      nothingCompiling: round(gapNone),
      compileOnCompilerThread: round(gapThread),
      compileOnEngineThread: round(gapMain),
    },
    runs: { mixed: mixed.map(withoutOutputs), baseline: baseline.map(withoutOutputs) },
  };
  console.log(JSON.stringify({ ...result, runs: undefined }, null, 2));
  results.push(result);
  await engine.close();
  await thread.close();
}
const report = {
  command: `node bench/structured/batch.ts --reps ${reps} --threads ${numThreads}`,
  machine: 'development VM, 2 shared cores, CPU executor',
  results,
};
if (values.out !== undefined) writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
