// Builds prompt fragments of a planned length without a client-side tokenizer: either random
// token ids (sent as `prompt: number[]`, exact length) or common English words (about one
// token each; the true length is read back from the server's usage).
import type { Rng } from '../rng.ts';
import type { PromptPart, PromptSource } from './types.ts';

// Short, frequent words: each is a single token in Llama, Mistral and Qwen vocabularies
// when preceded by a space.
const WORDS = (
  'the of and to in is for on that by this with you it not or be are from at as your all have new ' +
  'more an was we will home can us about if page my has search free but our one other do no time ' +
  'they site he up may what which their news out use any there see only so his when contact here ' +
  'business who web also now help get view online first been would how were me some these click its ' +
  'like service than find price date back top people had list name just over state year day into ' +
  'email two health world next used go work last most products music buy data make them should ' +
  'product system post her city add policy number such please available copyright support message ' +
  'after best software then good video well where info rights public books high school through each ' +
  'links she review years order very privacy book items company read group need many user said does ' +
  'set under general research university january mail full map reviews program life know games way ' +
  'days management part could great united hotel real item international center must store travel'
).split(' ');

export function wordList(): readonly string[] {
  return WORDS;
}

export function makePromptPart(rng: Rng, numTokens: number, source: PromptSource): PromptPart {
  if (source.format === 'token-ids') {
    const ids: number[] = new Array(numTokens);
    for (let i = 0; i < numTokens; i++) ids[i] = rng.int(source.minTokenId, source.maxTokenId);
    return { type: 'token-ids', ids };
  }
  const words: string[] = new Array(numTokens);
  for (let i = 0; i < numTokens; i++) words[i] = WORDS[rng.int(0, WORDS.length - 1)] as string;
  return { type: 'text', text: words.join(' ') };
}

/** Joins a system part and a user part into one completions prompt. */
export function joinParts(first: PromptPart | null, second: PromptPart): PromptPart {
  if (first === null) return second;
  if (first.type === 'token-ids' && second.type === 'token-ids') {
    return { type: 'token-ids', ids: [...first.ids, ...second.ids] };
  }
  return { type: 'text', text: `${partText(first)} ${partText(second)}` };
}

export function partText(part: PromptPart): string {
  return part.type === 'text' ? part.text : part.ids.join(' ');
}

export function partLength(part: PromptPart): number {
  return part.type === 'token-ids' ? part.ids.length : part.text.split(' ').filter((w) => w !== '').length;
}
