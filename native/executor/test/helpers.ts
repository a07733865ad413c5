// Shared test helpers: fixture discovery, golden files, sequential greedy decoding.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type Device,
  defaultSampling,
  type Executor,
  type SamplingParams,
  type SequenceInput,
} from '../src/index.ts';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export interface GoldenCase {
  prompt_ids: number[];
  greedy_ids: number[];
  last_prompt_logits?: number[];
  sequence_logprobs?: number[];
}

export interface Fixture {
  name: string;
  dir: string;
  cases: GoldenCase[];
  /** text_cases and chat_cases (prompt ids as the tokenizer and chat template make them). */
  textCases: GoldenCase[];
}

/**
 * Executor options that reproduce how golden.json's `cases` were computed: by a transformers model
 * cast to its stored dtype after construction, which rounds RoPE inv_freq to that dtype (a no-op
 * for float32 checkpoints). `text_cases` / `chat_cases` were computed after from_pretrained, which
 * keeps inv_freq in float32: the executor's default. Measured on tiny-llama-bf16: with rounding,
 * `cases` match to 5e-6 and two text/chat cases flip a near-tie; without it, the reverse.
 */
/**
 * Where the executor tests run: the CPU (default), or TANDEM_TEST_DEVICE=cuda:N on a GPU host
 * (bench/cuda/gpu_run.sh, stage `node`), computing in float32 so the same tolerances hold.
 */
export const testDeviceOptions = {
  device: (process.env.TANDEM_TEST_DEVICE ?? 'cpu') as Device,
  dtype: 'float32',
} as const;

export const casesOptions = { ropeFrequencyRounding: 'stored-dtype' } as const;

const fixtureNames = ['tiny-llama', 'tiny-llama-bf16', 'tiny-llama31', 'tiny-qwen2', 'tiny-qwen3'];

export function loadFixtures(): Fixture[] {
  return fixtureNames.map((name) => {
    const dir = `${repoRoot}test/fixtures/${name}`;
    const golden = JSON.parse(readFileSync(`${dir}/golden.json`, 'utf8')) as {
      cases: GoldenCase[];
      text_cases: GoldenCase[];
      chat_cases: GoldenCase[];
    };
    return { name, dir, cases: golden.cases, textCases: [...golden.text_cases, ...golden.chat_cases] };
  });
}

/** The demo model: its golden has text_cases only (48 greedy tokens each). */
export function loadDemo(): Fixture {
  const dir = `${repoRoot}deploy/models/tandem-demo-code`;
  const golden = JSON.parse(readFileSync(`${dir}/golden.json`, 'utf8')) as { text_cases: GoldenCase[] };
  return { name: 'tandem-demo-code', dir, cases: golden.text_cases, textCases: golden.text_cases };
}

export function seqInput(
  fields: Partial<SequenceInput> & Pick<SequenceInput, 'tokenIds' | 'pageTable'>,
): SequenceInput {
  return {
    startPos: 0,
    sampleIndices: Int32Array.of(fields.tokenIds.length - 1),
    sampling: defaultSampling(),
    promptTokenIds: null,
    outputTokenIds: null,
    targetIds: null,
    returnLogits: false,
    returnProbs: false,
    ...fields,
  };
}

/** Pages [first, first + count) as a page table. */
export function pageRange(first: number, count: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => first + i);
}

/** Prefill the whole prompt, then decode one token per call. */
export async function generateSequential(
  ex: Executor,
  promptIds: number[],
  numTokens: number,
  pageTable: Int32Array,
  sampling: SamplingParams = defaultSampling(),
): Promise<{ tokenIds: number[]; logprobs: number[]; firstLogits: Float32Array | null }> {
  const tokenIds: number[] = [];
  const logprobs: number[] = [];
  let firstLogits: Float32Array | null = null;
  let input = Int32Array.from(promptIds);
  let startPos = 0;
  while (tokenIds.length < numTokens) {
    const [out] = await ex.forward([
      seqInput({ tokenIds: input, startPos, pageTable, sampling, returnLogits: tokenIds.length === 0 }),
    ]);
    const sample = out?.samples[0];
    if (sample === undefined) throw new Error('no sample');
    if (tokenIds.length === 0) firstLogits = sample.logits;
    tokenIds.push(sample.tokenId);
    logprobs.push(sample.logprob);
    startPos += input.length;
    input = Int32Array.of(sample.tokenId);
  }
  return { tokenIds, logprobs, firstLogits };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
}

/** A small seeded PRNG (mulberry32) for reproducible schedules. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Shuffled page ids [0, numPages): sequences get scattered, non-contiguous pages. */
export function shuffledPages(numPages: number, random: () => number): number[] {
  const pages = Array.from({ length: numPages }, (_, i) => i);
  for (let i = pages.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [pages[i], pages[j]] = [pages[j] as number, pages[i] as number];
  }
  return pages;
}

/**
 * Log-probs of the same sequences computed in differently composed batches. The CPU kernels are
 * batch-invariant (bit-identical); on CUDA, cuBLASLt picks its algorithm per batch shape, so
 * float32 results may differ in the last bits (measured: ~1e-6).
 */
export function assertSameLogprobs(
  actual: readonly number[],
  expected: readonly number[],
  message: string,
): void {
  if (testDeviceOptions.device === 'cpu') {
    assert.deepEqual(actual, expected, message);
    return;
  }
  assert.equal(actual.length, expected.length, message);
  const diff = maxAbsDiff(actual, expected);
  assert.ok(diff < 1e-4, `${message}: differ by ${diff}`);
}
