// The checkpoints under test/fixtures and the demo model, with their golden.json.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChatMessage } from '../src/chat-template.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));

export interface TextCase {
  prompt: string;
  prompt_ids: number[];
  greedy_ids: number[];
  greedy_text: string;
  decode_prompt?: string;
}

export interface ChatCase {
  messages: ChatMessage[];
  prompt_ids: number[];
  greedy_ids: number[];
  greedy_text: string;
}

export interface Golden {
  cases?: {
    prompt_ids: number[];
    greedy_ids: number[];
    sequence_logprobs: number[];
    greedy_min_margin: number;
  }[];
  text_cases: TextCase[];
  chat_cases?: ChatCase[];
}

export interface Fixture {
  name: string;
  dir: string;
  golden: Golden;
}

export const fixtureNames = ['tiny-llama', 'tiny-llama-bf16', 'tiny-llama31', 'tiny-qwen2', 'tiny-qwen3'];

export function fixture(name: string): Fixture {
  const dir = name === 'tandem-demo-code' ? `${root}deploy/models/${name}` : `${root}test/fixtures/${name}`;
  return { name, dir, golden: JSON.parse(readFileSync(`${dir}/golden.json`, 'utf8')) as Golden };
}

export const allFixtures = (): Fixture[] => [...fixtureNames, 'tandem-demo-code'].map(fixture);
