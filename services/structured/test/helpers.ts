// Shared test helpers: the real fixture vocabularies, a seeded random source, and a random walk
// that samples allowed tokens like a model at temperature 1, then steers to a finish.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { GrammarMatcher } from '../src/matcher.ts';
import { Vocabulary } from '../src/vocabulary.ts';

const repoRoot = join(import.meta.dirname, '..', '..', '..');

/** Byte-level (tandem-demo-code, tiny-qwen3, tiny-llama-bf16) and Metaspace (tiny-llama) checkpoints. */
export const checkpointDirs = {
  demo: join(repoRoot, 'deploy', 'models', 'tandem-demo-code'),
  tinyLlama: join(repoRoot, 'test', 'fixtures', 'tiny-llama'),
  tinyLlama31: join(repoRoot, 'test', 'fixtures', 'tiny-llama31'),
  tinyQwen3: join(repoRoot, 'test', 'fixtures', 'tiny-qwen3'),
  tinyLlamaBf16: join(repoRoot, 'test', 'fixtures', 'tiny-llama-bf16'),
} as const;

const loaded = new Map<string, Promise<Vocabulary>>();

export function loadVocabulary(name: keyof typeof checkpointDirs): Promise<Vocabulary> {
  let vocabulary = loaded.get(name);
  if (vocabulary === undefined) {
    vocabulary = Vocabulary.load(checkpointDirs[name]);
    loaded.set(name, vocabulary);
  }
  return vocabulary;
}

/** mulberry32: a small seeded generator in [0, 1). */
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

export interface WalkResult {
  text: string;
  tokenIds: number[];
  completed: boolean;
}

/**
 * Samples uniformly among the allowed tokens (EOS included where allowed) for `freeSteps`,
 * then picks, among a sample of allowed tokens and every single-byte token, one that leaves
 * the fewest bytes to finish, until EOS. Asserts at each step that something is allowed and
 * that the matcher accepts what its mask allowed.
 */
export function randomWalk(
  matcher: GrammarMatcher,
  vocabulary: Vocabulary,
  random: () => number,
  options: { freeSteps?: number; maxSteps?: number } = {},
): WalkResult {
  const freeSteps = options.freeSteps ?? 40;
  const maxSteps = options.maxSteps ?? 2000;
  const eos = vocabulary.eosTokenIds[0] as number;
  const tokenIds: number[] = [];
  const bytes: number[] = [];
  const singleByteIds = new Set<number>();
  vocabulary.tokenBytes.forEach((b, id) => {
    if (b?.length === 1) singleByteIds.add(id);
  });
  for (let step = 0; step < maxSteps; step++) {
    const allowed = matcher.allowedTokenIds();
    assert.ok(allowed.length > 0, `nothing allowed after ${JSON.stringify(lenient(bytes))}`);
    let pick: number;
    if (step < freeSteps) pick = allowed[Math.floor(random() * allowed.length)] as number;
    else if (matcher.canTerminate()) pick = eos;
    else {
      const allowedSet = new Set(allowed);
      const candidates = [...singleByteIds].filter((id) => allowedSet.has(id));
      for (let k = 0; k < 64; k++) candidates.push(allowed[Math.floor(random() * allowed.length)] as number);
      let best = Number.MAX_SAFE_INTEGER;
      pick = -1;
      for (const id of candidates) {
        if (vocabulary.eosTokenIds.includes(id)) continue;
        const probe = matcher.clone();
        assert.ok(probe.acceptToken(id), `allowed token ${id} was refused`);
        const cost = probe.bytesToFinish() * 64 + Math.floor(random() * 64);
        if (cost < best) {
          best = cost;
          pick = id;
        }
      }
    }
    assert.ok(
      matcher.acceptToken(pick),
      `allowed token ${pick} was refused after ${JSON.stringify(lenient(bytes))}`,
    );
    if (vocabulary.eosTokenIds.includes(pick)) return { text: decode(bytes), tokenIds, completed: true };
    tokenIds.push(pick);
    bytes.push(...(vocabulary.tokenBytes[pick] as Uint8Array));
  }
  return { text: decode(bytes), tokenIds, completed: false };
}

function lenient(bytes: readonly number[]): string {
  return new TextDecoder().decode(Uint8Array.from(bytes));
}

/** UTF-8 text of `bytes`; throws on invalid UTF-8 (a constrained output never is). */
export function decode(bytes: readonly number[]): string {
  return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
}

/** Whether a fresh matcher reads all of `text` and may end there. */
export function accepts(newMatcher: () => GrammarMatcher, text: string): boolean {
  const matcher = newMatcher();
  return matcher.acceptString(text) && matcher.canTerminate();
}
