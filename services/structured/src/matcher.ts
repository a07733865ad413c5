// One sequence's position in a compiled constraint. Each decode step: fillNextTokenBitmask()
// (or allowedTokenIds()) before sampling, acceptToken() after. Every allowed token keeps a path
// to a complete output, and EOS is allowed exactly where the output may end.
import type { CompiledGrammar } from './compiled-grammar.ts';
import { advance, ConfigList, close, reachedRootEnd, rootNode, StackPool } from './stack.ts';

const textEncoder = new TextEncoder();

export class GrammarMatcher {
  readonly grammar: CompiledGrammar;
  private pool: StackPool;
  /** Configurations that read bytes. */
  private configs = new ConfigList();
  /** close() flags of the current position: reachedRootEnd where the output may end. */
  private endFlags = 0;
  private completed = false;
  private readonly next = new ConfigList();
  private readonly scratch = new ConfigList();

  constructor(grammar: CompiledGrammar) {
    this.grammar = grammar;
    this.pool = new StackPool();
    this.reset();
  }

  /** Back to the start of the output. */
  reset(): void {
    this.pool = new StackPool();
    this.configs.clear();
    this.endFlags = close(
      this.grammar.automaton,
      this.pool,
      this.grammar.automaton.rootStart,
      rootNode,
      this.configs,
    );
    this.completed = false;
  }

  /** An independent matcher at the same position (stacks are shared, never mutated). */
  clone(): GrammarMatcher {
    const copy = new GrammarMatcher(this.grammar);
    copy.pool = this.pool;
    copy.configs.copyFrom(this.configs);
    copy.endFlags = this.endFlags;
    copy.completed = this.completed;
    return copy;
  }

  /** The output may end here: EOS is allowed. */
  canTerminate(): boolean {
    return !this.completed && (this.endFlags & reachedRootEnd) !== 0;
  }

  /** An EOS token was accepted: the output is complete and nothing more is allowed. */
  isCompleted(): boolean {
    return this.completed;
  }

  /** Fewest bytes that complete the output from here (0 when it may end now). */
  bytesToFinish(): number {
    if (this.completed || this.canTerminate()) return 0;
    const { automaton } = this.grammar;
    let best = Number.MAX_SAFE_INTEGER;
    const d = this.configs.data;
    for (let k = 0; k < this.configs.length; k += 2) {
      const cost =
        (automaton.bytesToFinish[d[k] as number] as number) +
        this.pool.bytesToFinish(automaton, d[k + 1] as number);
      if (cost < best) best = cost;
    }
    return best;
  }

  /** Advances by one token; false (and no change) when the token is not allowed here. */
  acceptToken(tokenId: number): boolean {
    if (this.completed) return false;
    const { vocabulary } = this.grammar;
    if (vocabulary.eosTokenIds.includes(tokenId)) {
      if (!this.canTerminate()) return false;
      this.completed = true;
      return true;
    }
    const bytes = vocabulary.tokenBytes[tokenId];
    if (bytes === null || bytes === undefined) return false;
    return this.acceptBytes(bytes);
  }

  /** Advances by raw text (e.g. a forced prefix); false (and no change) when not allowed. */
  acceptString(text: string): boolean {
    if (this.completed) return false;
    return this.acceptBytes(textEncoder.encode(text));
  }

  /**
   * Sets bit `id` of `mask` (bit id & 31 of word id >>> 5; at least ceil(vocabSize / 32)
   * words) for every allowed token, clearing the others. Returns the number allowed.
   */
  fillNextTokenBitmask(mask: Uint32Array): number {
    const { vocabulary } = this.grammar;
    const words = Math.ceil(vocabulary.size / 32);
    if (mask.length < words) throw new RangeError(`mask has ${mask.length} words, needs ${words}`);
    mask.fill(0);
    if (this.completed) return 0;
    const d = this.configs.data;
    let anyUncertain = false;
    for (let k = 0; k < this.configs.length; k += 2) {
      const masks = this.grammar.masksOf(d[k] as number);
      masks.orInto(mask);
      if (masks.uncertain.length > 0) anyUncertain = true;
    }
    if (anyUncertain) {
      for (const id of this.checkUncertain(mask))
        mask[id >>> 5] = (mask[id >>> 5] as number) | (1 << (id & 31));
    }
    if (this.canTerminate()) {
      for (const id of vocabulary.eosTokenIds) mask[id >>> 5] = (mask[id >>> 5] as number) | (1 << (id & 31));
    }
    return countBits(mask, words);
  }

  /** The allowed token ids, ascending (what the executor's allowedTokenIds takes). */
  allowedTokenIds(): Int32Array {
    const mask = new Uint32Array(Math.ceil(this.grammar.vocabulary.size / 32));
    const count = this.fillNextTokenBitmask(mask);
    return bitmaskToIds(mask, count);
  }

  /** Uncertain tokens that the real stacks allow here (cached per parse configuration). */
  private checkUncertain(mask: Uint32Array): Int32Array {
    const key = this.configurationKey();
    const cached = this.grammar.lookupChecked(key);
    if (cached !== null) return cached;
    const { automaton } = this.grammar;
    const passed: number[] = [];
    const d = this.configs.data;
    const skip = (id: number): boolean => (((mask[id >>> 5] as number) >>> (id & 31)) & 1) === 1;
    for (let k = 0; k < this.configs.length; k += 2) {
      const masks = this.grammar.masksOf(d[k] as number);
      if (masks.uncertain.length === 0) continue;
      const start = passed.length;
      this.grammar.uncertainChecker.check(automaton, this.pool, d[k + 1] as number, masks, skip, passed);
      for (let i = start; i < passed.length; i++) {
        const id = passed[i] as number;
        mask[id >>> 5] = (mask[id >>> 5] as number) | (1 << (id & 31));
      }
    }
    const result = Int32Array.from(passed);
    this.grammar.storeChecked(key, result);
    return result;
  }

  private configurationKey(): string {
    let key = '';
    const d = this.configs.data;
    for (let k = 0; k < this.configs.length; k += 2)
      key += `${d[k]}@${this.pool.describe(d[k + 1] as number)}|`;
    return key;
  }

  private acceptBytes(bytes: Uint8Array): boolean {
    if (bytes.length === 0) return true;
    const flags = advance(this.grammar.automaton, this.pool, this.configs, bytes, this.next, this.scratch);
    if (flags < 0) return false;
    this.configs.copyFrom(this.next);
    this.endFlags = flags;
    return true;
  }
}

function countBits(mask: Uint32Array, words: number): number {
  let count = 0;
  for (let w = 0; w < words; w++) {
    let v = mask[w] as number;
    v -= (v >>> 1) & 0x55555555;
    v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
    count += (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
  }
  return count;
}

/** The set bits of `mask` as ascending ids. */
export function bitmaskToIds(mask: Uint32Array, count: number): Int32Array {
  const ids = new Int32Array(count);
  let n = 0;
  for (let w = 0; w < mask.length; w++) {
    let v = mask[w] as number;
    while (v !== 0) {
      const low = v & -v;
      ids[n++] = (w << 5) + (31 - Math.clz32(low));
      v ^= low;
    }
  }
  return ids;
}
