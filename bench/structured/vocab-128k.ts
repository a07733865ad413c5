// A realistic 128,256-entry byte-level BPE vocabulary, built deterministically: byte-level BPE
// trained (Llama 3's pre-tokenizer regex, 256 byte symbols, greedy most-frequent-pair merges)
// on the text of this repository's source tree and its installed packages (node_modules: code,
// docs, JSON; pinned by the lockfile), read in sorted path order up to a byte cap. 128,000
// regular tokens + 256 special tokens, as Llama 3 has. Cached in the OS temp dir.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';

export const regularTokens = 128_000;
export const specialTokens = 256;
const corpusBytes = 48 * 1024 * 1024;
const textExtensions = new Set([
  '.md',
  '.ts',
  '.js',
  '.mjs',
  '.cjs',
  '.json',
  '.cc',
  '.h',
  '.cu',
  '.py',
  '.txt',
  '.yaml',
]);
// Llama 3's pre-tokenizer (the case-insensitive contraction group spelled out).
const pretokenize =
  /'(?:[sdmtSDMT]|ll|LL|ve|VE|re|RE)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

export interface TokenizerJsonLike {
  model: { type: 'BPE'; vocab: Record<string, number>; merges: string[] };
  decoder: { type: 'ByteLevel' };
  added_tokens: { id: number; content: string; special: boolean }[];
}

/** tokenizer.json (byte-level) with 128,256 entries; built once, then read from the cache. */
export function vocabulary128k(repoRoot: string): {
  json: TokenizerJsonLike;
  cachePath: string;
  built: boolean;
} {
  const cachePath = join(tmpdir(), 'tandem-structured-vocab-128k.json');
  if (existsSync(cachePath))
    return { json: JSON.parse(readFileSync(cachePath, 'utf8')), cachePath, built: false };
  const tokens = trainBpe(readCorpus(repoRoot));
  const byteToChar = gpt2ByteToUnicode();
  const vocab: Record<string, number> = {};
  tokens.forEach((latin1, id) => {
    let text = '';
    for (let i = 0; i < latin1.length; i++) text += byteToChar[latin1.charCodeAt(i)];
    vocab[text] = id;
  });
  const added = Array.from({ length: specialTokens }, (_, i) => ({
    id: regularTokens + i,
    content: i === 0 ? '<|begin_of_text|>' : i === 1 ? '<|end_of_text|>' : `<|reserved_special_token_${i}|>`,
    special: true,
  }));
  const json: TokenizerJsonLike = {
    model: { type: 'BPE', vocab, merges: [] },
    decoder: { type: 'ByteLevel' },
    added_tokens: added,
  };
  writeFileSync(cachePath, JSON.stringify(json));
  return { json, cachePath, built: true };
}

function readCorpus(root: string): string[] {
  const files: string[] = [];
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir).sort()) {
      if (entry === '.git' || entry === '.tools' || entry === 'fixtures' || entry === 'models') continue;
      const path = join(dir, entry);
      const stat = statSync(path, { throwIfNoEntry: false });
      if (stat === undefined) continue;
      if (stat.isDirectory()) visit(path);
      else if (textExtensions.has(extname(entry)) && stat.size < 4 * 1024 * 1024) files.push(path);
    }
  };
  visit(root);
  const texts: string[] = [];
  let total = 0;
  for (const path of files) {
    if (total >= corpusBytes) break;
    const text = readFileSync(path, 'utf8');
    texts.push(text);
    total += text.length;
  }
  return texts;
}

/** Greedy byte-level BPE: the most frequent adjacent pair merges first (ties: lower ids). */
function trainBpe(texts: readonly string[]): string[] {
  const counts = new Map<string, number>();
  const encoder = new TextEncoder();
  for (const text of texts) {
    for (const match of text.matchAll(pretokenize)) {
      const bytes = encoder.encode(match[0]);
      const key = String.fromCharCode(...bytes);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  const tokens: string[] = Array.from({ length: 256 }, (_, b) => String.fromCharCode(b));
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [key, n] of counts) {
    words.push(Array.from(key, (c) => c.charCodeAt(0)));
    freq.push(n);
  }
  const shift = 2 ** 20;
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (w: number, sign: number): void => {
    const word = words[w] as number[];
    for (let i = 0; i + 1 < word.length; i++) {
      const pair = (word[i] as number) * shift + (word[i + 1] as number);
      pairCount.set(pair, (pairCount.get(pair) ?? 0) + sign * (freq[w] as number));
      if (sign > 0) {
        const set = pairWords.get(pair);
        if (set === undefined) pairWords.set(pair, new Set([w]));
        else set.add(w);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1);
  const heap = new MaxHeap();
  for (const [pair, n] of pairCount) heap.push(n, pair);
  while (tokens.length < regularTokens && heap.size > 0) {
    const [n, pair] = heap.pop();
    if (pairCount.get(pair) !== n) {
      const actual = pairCount.get(pair) ?? 0;
      if (actual > 0) heap.push(actual, pair);
      continue;
    }
    const a = Math.floor(pair / shift);
    const b = pair % shift;
    const id = tokens.length;
    tokens.push((tokens[a] as string) + (tokens[b] as string));
    for (const w of pairWords.get(pair) ?? []) {
      addPairs(w, -1);
      const word = words[w] as number[];
      const merged: number[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
          merged.push(id);
          i++;
        } else merged.push(word[i] as number);
      }
      words[w] = merged;
      addPairs(w, 1);
      const wordAfter = merged;
      for (let i = 0; i + 1 < wordAfter.length; i++) {
        const p = (wordAfter[i] as number) * shift + (wordAfter[i + 1] as number);
        heap.push(pairCount.get(p) as number, p);
      }
    }
    pairCount.delete(pair);
    pairWords.delete(pair);
  }
  return tokens;
}

class MaxHeap {
  private readonly counts: number[] = [];
  private readonly pairs: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private less(i: number, j: number): boolean {
    const ci = this.counts[i] as number;
    const cj = this.counts[j] as number;
    return ci < cj || (ci === cj && (this.pairs[i] as number) > (this.pairs[j] as number));
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j] as number, this.counts[i] as number];
    [this.pairs[i], this.pairs[j]] = [this.pairs[j] as number, this.pairs[i] as number];
  }

  push(count: number, pair: number): void {
    this.counts.push(count);
    this.pairs.push(pair);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(parent, i)) break;
      this.swap(parent, i);
      i = parent;
    }
  }

  pop(): [number, number] {
    const top: [number, number] = [this.counts[0] as number, this.pairs[0] as number];
    const lastCount = this.counts.pop() as number;
    const lastPair = this.pairs.pop() as number;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.pairs[0] = lastPair;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.counts.length && this.less(m, l)) m = l;
        if (r < this.counts.length && this.less(m, r)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

function gpt2ByteToUnicode(): string[] {
  const bytes: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bytes.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bytes.push(b);
  for (let b = 0xae; b <= 0xff; b++) bytes.push(b);
  const out: string[] = new Array(256);
  bytes.forEach((b) => {
    out[b] = String.fromCharCode(b);
  });
  let extra = 0;
  for (let b = 0; b < 256; b++) if (out[b] === undefined) out[b] = String.fromCharCode(256 + extra++);
  return out;
}
