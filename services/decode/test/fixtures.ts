// The reference checkpoints (test/fixtures/README.md) and their golden outputs.
import { readFileSync } from 'node:fs';

export const fixturesDir = new URL('../../../test/fixtures/', import.meta.url).pathname;
export const fixtureNames = [
  'tiny-llama',
  'tiny-llama-bf16',
  'tiny-llama31',
  'tiny-qwen2',
  'tiny-qwen3',
] as const;

export interface GoldenTextCase {
  prompt: string;
  prompt_ids: number[];
  greedy_ids: number[];
  greedy_text: string;
}

export interface GoldenChatCase {
  messages: { role: string; content: string }[];
  prompt_ids: number[];
  greedy_ids: number[];
  greedy_text: string;
}

export interface Golden {
  /** Absent for the demo checkpoint. */
  cases?: { prompt_ids: number[]; greedy_ids: number[] }[];
  text_cases: GoldenTextCase[];
  chat_cases?: GoldenChatCase[];
}

export const demoModelDir = new URL('../../../deploy/models/tandem-demo-code', import.meta.url).pathname;

export function modelDir(name: string): string {
  return `${fixturesDir}${name}`;
}

export function loadGolden(dir: string): Golden {
  return JSON.parse(readFileSync(`${dir}/golden.json`, 'utf8')) as Golden;
}
