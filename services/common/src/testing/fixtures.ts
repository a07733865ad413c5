// The reference checkpoints (test/fixtures/README.md) and the demo model, with their golden.json:
// the one loader every package's tests use.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

/** Teacher-forced cases (absent for the demo model). */
export interface GoldenCase {
  prompt_ids: number[];
  greedy_ids: number[];
  sequence_logprobs: number[];
  greedy_min_margin: number;
}

export interface GoldenTextCase {
  prompt: string;
  prompt_ids: number[];
  greedy_ids: number[];
  greedy_text: string;
  decode_prompt?: string;
}

export interface GoldenChatCase {
  messages: { role: string; content: string }[];
  prompt_ids: number[];
  greedy_ids: number[];
  greedy_text: string;
}

export interface Golden {
  cases?: GoldenCase[];
  text_cases: GoldenTextCase[];
  chat_cases?: GoldenChatCase[];
}

export interface Fixture {
  name: string;
  dir: string;
  golden: Golden;
}

/** The tiny checkpoints under test/fixtures (byte-level and Metaspace tokenizers, Llama and Qwen). */
export const fixtureNames = ['tiny-llama', 'tiny-llama-bf16', 'tiny-llama31', 'tiny-qwen2', 'tiny-qwen3'];
export const demoModelName = 'tandem-demo-code';
export const demoModelDir = `${repoRoot}deploy/models/${demoModelName}`;

export function fixtureDir(name: string): string {
  return name === demoModelName ? demoModelDir : `${repoRoot}test/fixtures/${name}`;
}

export function fixture(name: string): Fixture {
  const dir = fixtureDir(name);
  return { name, dir, golden: JSON.parse(readFileSync(`${dir}/golden.json`, 'utf8')) as Golden };
}

/** Every fixture, then the demo model. */
export const allFixtures = (): Fixture[] => [...fixtureNames, demoModelName].map(fixture);
