// Mask cost per decode step with a 128,256-token byte-level vocabulary (vocab-128k.ts), for
// JSON schemas, json_object, a regex and a choice list, next to a baseline measured in the same
// run: one pass over a 128,256-entry Float32Array (an argmax, which the sampler does anyway).
// Sequences are sampled like a temperature-1 model that sees only the mask (uniform among the
// allowed tokens), then steered to the end; only the library calls are timed.
//   node bench/structured/bench.ts [--out bench/structured/results/results.json] [--sequences 20]
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type ConstraintSpec,
  GrammarCompiler,
  type GrammarMatcher,
  Vocabulary,
} from '../../services/structured/src/index.ts';
import { vocabulary128k } from './vocab-128k.ts';

const { values } = parseArgs({
  options: { out: { type: 'string' }, sequences: { type: 'string', default: '20' } },
});
const numSequences = Number(values.sequences);
const repoRoot = join(import.meta.dirname, '..', '..');

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

function percentiles(samples: number[]): { p50: number; p99: number; max: number; n: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const round = (v: number): number => Math.round(v * 10) / 10;
  return { p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted.at(-1) ?? 0), n: sorted.length };
}

const microseconds = (start: number): number => (performance.now() - start) * 1000;

let t0 = performance.now();
const { json, built } = vocabulary128k(repoRoot);
const vocabSeconds = (performance.now() - t0) / 1000;
t0 = performance.now();
const vocabulary = Vocabulary.fromTokenizerJson(json, { eos_token: '<|end_of_text|>' });
const compiler = new GrammarCompiler(vocabulary);
const setupMs = performance.now() - t0;
const eos = vocabulary.eosTokenIds[0] as number;
console.log(
  `vocabulary: ${vocabulary.size} tokens (${built ? 'trained' : 'cached'} in ${vocabSeconds.toFixed(1)} s); ` +
    `Vocabulary + trie (${compiler.trie.numNodes} nodes) in ${setupMs.toFixed(0)} ms`,
);

// Baseline: one pass over the logits.
const logits = new Float32Array(vocabulary.size);
const random = seededRandom(1);
for (let i = 0; i < logits.length; i++) logits[i] = random() * 20 - 10;
const baselineSamples: number[] = [];
let sink = 0;
for (let i = 0; i < 2000; i++) {
  const start = performance.now();
  let best = 0;
  for (let j = 1; j < logits.length; j++) if ((logits[j] as number) > (logits[best] as number)) best = j;
  sink += best;
  baselineSamples.push(microseconds(start));
}
const baseline = percentiles(baselineSamples.slice(200));
console.log(
  `baseline (argmax over ${logits.length} float32): p50 ${baseline.p50} us, p99 ${baseline.p99} us`,
);

const specs: Record<string, ConstraintSpec> = {
  'json_schema (strict object)': {
    type: 'json_schema',
    schema: {
      type: 'object',
      properties: {
        title: { type: 'string' },
        rating: { type: 'integer', minimum: 1, maximum: 5 },
        price: { type: 'number', exclusiveMinimum: 0, maximum: 10000 },
        summary: { anyOf: [{ type: 'string' }, { type: 'null' }] },
        tags: { type: 'array', items: { type: 'string', enum: ['new', 'used', 'refurbished'] }, maxItems: 3 },
        seller: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            email: { type: 'string', format: 'email' },
            since: { type: 'string', format: 'date' },
          },
          required: ['name', 'email', 'since'],
          additionalProperties: false,
        },
      },
      required: ['title', 'rating', 'price', 'summary', 'tags', 'seller'],
      additionalProperties: false,
    },
  },
  'json_schema (recursive $ref)': {
    type: 'json_schema',
    schema: {
      $defs: {
        node: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            size: { type: 'integer', minimum: 0 },
            children: { type: 'array', items: { $ref: '#/$defs/node' } },
          },
          required: ['name', 'children'],
          additionalProperties: false,
        },
      },
      $ref: '#/$defs/node',
    },
  },
  'json_schema (maxLength 64 strings)': {
    type: 'json_schema',
    schema: {
      type: 'object',
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 64 },
        city: { type: 'string', maxLength: 64 },
      },
      required: ['name', 'city'],
      additionalProperties: false,
    },
  },
  json_object: { type: 'json_object' },
  'regex (email)': { type: 'regex', pattern: '[a-z0-9._%+-]{1,30}@[a-z0-9-]{1,20}(\\.[a-z]{2,6}){1,2}' },
  'choice (10)': {
    type: 'choice',
    choices: [
      'positive',
      'negative',
      'neutral',
      'mixed',
      'unknown',
      'very positive',
      'very negative',
      'sarcastic',
      'question',
      'off-topic',
    ],
  },
};

interface Timings {
  fill: number[];
  ids: number[];
  accept: number[];
  tokens: number;
}

/** One sequence: uniform among allowed tokens for `freeSteps`, then the shortest finish. */
function runSequence(matcher: GrammarMatcher, seed: number, timings: Timings, freeSteps = 48): string {
  const rand = seededRandom(seed);
  const mask = new Uint32Array(Math.ceil(vocabulary.size / 32));
  const bytes: number[] = [];
  for (let step = 0; step < 1500; step++) {
    let start = performance.now();
    matcher.fillNextTokenBitmask(mask);
    timings.fill.push(microseconds(start));
    start = performance.now();
    const allowed = matcher.allowedTokenIds();
    timings.ids.push(microseconds(start));
    let pick: number;
    if (step < freeSteps) pick = allowed[Math.floor(rand() * allowed.length)] as number;
    else if (matcher.canTerminate()) pick = eos;
    else {
      let best = Number.MAX_SAFE_INTEGER;
      pick = allowed[0] as number;
      for (let k = 0; k < 48; k++) {
        const id = allowed[Math.floor(rand() * allowed.length)] as number;
        if (id === eos) continue;
        const probe = matcher.clone();
        probe.acceptToken(id);
        const cost = probe.bytesToFinish();
        if (cost < best) [best, pick] = [cost, id];
      }
      for (let b = 0; b < 256; b++) {
        const probe = matcher.clone();
        if (probe.acceptToken(b) && probe.bytesToFinish() < best) [best, pick] = [probe.bytesToFinish(), b];
      }
    }
    start = performance.now();
    const ok = matcher.acceptToken(pick);
    timings.accept.push(microseconds(start));
    if (!ok) throw new Error(`allowed token ${pick} refused`);
    timings.tokens++;
    if (pick === eos) break;
    bytes.push(...(vocabulary.tokenBytes[pick] as Uint8Array));
  }
  return new TextDecoder().decode(Uint8Array.from(bytes));
}

const results: Record<string, unknown> = {};
for (const [name, spec] of Object.entries(specs)) {
  const compileStart = performance.now();
  const grammar = compiler.compile(spec);
  const compileMs = performance.now() - compileStart;
  const cold: Timings = { fill: [], ids: [], accept: [], tokens: 0 };
  const coldStart = performance.now();
  const sample = runSequence(grammar.newMatcher(), 1000, cold);
  const firstSequenceMs = performance.now() - coldStart;
  const warm: Timings = { fill: [], ids: [], accept: [], tokens: 0 };
  for (let s = 0; s < numSequences; s++) runSequence(grammar.newMatcher(), 2000 + s, warm);
  const fill = percentiles(warm.fill);
  results[name] = {
    compileMs: Math.round(compileMs * 10) / 10,
    automatonStates: grammar.automaton.numStates,
    firstSequence: { tokens: cold.tokens, ms: Math.round(firstSequenceMs), fillUs: percentiles(cold.fill) },
    warm: {
      sequences: numSequences,
      tokens: warm.tokens,
      fillBitmaskUs: fill,
      allowedIdsUs: percentiles(warm.ids),
      acceptTokenUs: percentiles(warm.accept),
      fillP50OverBaselineP50: Math.round((fill.p50 / baseline.p50) * 100) / 100,
      fillP99OverBaselineP50: Math.round((fill.p99 / baseline.p50) * 100) / 100,
    },
    sampleOutput: sample.slice(0, 160),
  };
  console.log(
    `${name.padEnd(28)} compile ${compileMs.toFixed(1)} ms, ${grammar.automaton.numStates} states; first sequence ` +
      `${cold.tokens} tokens in ${firstSequenceMs.toFixed(0)} ms (fill p50 ${percentiles(cold.fill).p50} / max ${percentiles(cold.fill).max} us); ` +
      `warm fill p50 ${fill.p50} us p99 ${fill.p99} us, ids p50 ${percentiles(warm.ids).p50} us, accept p50 ${percentiles(warm.accept).p50} us`,
  );
}

const report = {
  machine: `${process.platform} ${process.arch}, node ${process.version}`,
  vocabulary: {
    size: vocabulary.size,
    trieNodes: compiler.trie.numNodes,
    maxTokenBytes: vocabulary.maxTokenBytes,
    setupMs: Math.round(setupMs),
  },
  baselineArgmaxUs: baseline,
  results,
  sink,
};
if (values.out !== undefined) writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
