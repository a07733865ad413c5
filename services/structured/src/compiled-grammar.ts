// A constraint compiled against one vocabulary: the automaton, its per-state token masks
// (computed on first use, or all at once by precompute()), and a cache of which uncertain
// tokens passed for a whole parse configuration (the state inside a long string repeats, so
// its mask is assembled from caches after the first step). Shared by every matcher of it.
import { type Automaton, tailReturn } from './automaton.ts';
import { GrammarMatcher } from './matcher.ts';
import { StackPool } from './stack.ts';
import { type ClassifyScratch, classify, type StateMasks, type TokenRests } from './state-masks.ts';
import { type SignatureRegistry, StateKeys } from './state-signature.ts';
import type { TokenTrie } from './token-trie.ts';
import { UncertainChecker } from './uncertain-check.ts';
import type { Vocabulary } from './vocabulary.ts';

const checkedCacheLimit = 4096;

/**
 * Masks of grammar-independent states (see state-signature.ts), shared by the grammars of one
 * vocabulary, least recently used dropped beyond a memory budget.
 */
export class SharedMasks {
  readonly registry: SignatureRegistry;
  /** The rests of uncertain tokens, for every grammar of the vocabulary. */
  readonly tokenRests: TokenRests;
  private readonly masks = new Map<string, StateMasks>();
  private readonly maxBytes: number;
  private bytes = 0;

  constructor(registry: SignatureRegistry, tokenRests: TokenRests, maxBytes = 256 * 1024 * 1024) {
    this.registry = registry;
    this.tokenRests = tokenRests;
    this.maxBytes = maxBytes;
  }

  get(key: string): StateMasks | null {
    const masks = this.masks.get(key);
    if (masks === undefined) return null;
    this.masks.delete(key);
    this.masks.set(key, masks);
    return masks;
  }

  set(key: string, masks: StateMasks): void {
    this.masks.set(key, masks);
    this.bytes += masks.byteSize;
    for (const [oldKey, old] of this.masks) {
      if (this.bytes <= this.maxBytes || this.masks.size <= 1) break;
      this.masks.delete(oldKey);
      this.bytes -= old.byteSize;
    }
  }
}

/**
 * What classifies a state on first use: the compiler's trie and scratch, and the masks shared
 * by the grammars of its vocabulary.
 */
export interface StateClassifier {
  readonly trie: TokenTrie;
  readonly scratch: ClassifyScratch;
  readonly shared: SharedMasks;
}

/**
 * Where a grammar's state masks come from: classified here on first use, or restored from a
 * compiler on another thread (transfer.ts), which classified every state that reads bytes (masks
 * null for the others) and judged its uncertain tokens with `uncertainChecker`'s rests.
 */
export type MaskSource =
  | { type: 'classify'; classifier: StateClassifier }
  | { type: 'restored'; stateMasks: (StateMasks | null)[]; uncertainChecker: UncertainChecker };

export class CompiledGrammar {
  /** The cache key of the constraint (canonical JSON of the spec). */
  readonly key: string;
  readonly automaton: Automaton;
  readonly vocabulary: Vocabulary;
  /** Per state: its masks once computed. */
  private readonly stateMasks: (StateMasks | null)[];
  /** null for a restored grammar: its states all came classified. */
  private readonly classifier: StateClassifier | null;
  private readonly stateKeys: StateKeys | null;
  /** Scratch for matchers' uncertain-token checks (one at a time: JavaScript is single-threaded). */
  readonly uncertainChecker: UncertainChecker;
  /** Parse configuration (states and stacks) -> uncertain tokens that passed there; LRU. */
  private readonly checked = new Map<string, Int32Array>();

  constructor(key: string, automaton: Automaton, vocabulary: Vocabulary, source: MaskSource) {
    this.key = key;
    this.automaton = automaton;
    this.vocabulary = vocabulary;
    if (source.type === 'classify') {
      this.classifier = source.classifier;
      this.stateKeys = new StateKeys(automaton, source.classifier.shared.registry);
      this.uncertainChecker = new UncertainChecker(source.classifier.shared.tokenRests);
      this.stateMasks = new Array(automaton.numStates).fill(null);
    } else {
      this.classifier = null;
      this.stateKeys = null;
      this.uncertainChecker = source.uncertainChecker;
      this.stateMasks = source.stateMasks;
    }
  }

  /** Words of a mask over the vocabulary: ceil(vocabulary size / 32). */
  get maskWords(): number {
    return Math.ceil(this.vocabulary.size / 32);
  }

  newMatcher(): GrammarMatcher {
    return new GrammarMatcher(this);
  }

  /** The masks of `state` (classified on first use). */
  masksOf(state: number): StateMasks {
    let masks = this.stateMasks[state];
    if (masks === null || masks === undefined) {
      const classifier = this.classifier;
      const stateKeys = this.stateKeys;
      if (classifier === null || stateKeys === null) {
        // A restored grammar carries every state that reads bytes, the only ones matchers reach.
        throw new RangeError(`state ${state} of a restored grammar has no masks`);
      }
      const key = stateKeys.keyOf(state);
      masks = key === null ? null : classifier.shared.get(key);
      if (masks === null) {
        masks = classify(
          this.automaton,
          classifier.trie,
          state,
          this.vocabulary.size,
          classifier.scratch,
          classifier.shared.tokenRests,
          this.vocabulary.tokenBytes,
        );
        if (key !== null) classifier.shared.set(key, masks);
      }
      this.stateMasks[state] = masks;
    }
    return masks;
  }

  /** The masks computed so far, per state (null: not classified). */
  get classifiedMasks(): readonly (StateMasks | null)[] {
    return this.stateMasks;
  }

  /** Classifies every state that reads bytes now, so that no decode step pays for it later. */
  precompute(): void {
    const a = this.automaton;
    for (let s = 0; s < a.numStates; s++) if (a.hasBytes[s] === 1) this.masksOf(s);
    // Judge each called rule's uncertain rests against every state that calls it (a return
    // state), so that the first step after a new caller does not pay for it either.
    const pool = new StackPool();
    for (let s = 0; s < a.numStates; s++) {
      for (let e = a.callOffsets[s] as number; e < (a.callOffsets[s + 1] as number); e++) {
        const returnState = a.callReturns[e] as number;
        if (returnState === tailReturn) continue;
        const rule = a.ruleOf(a.callStarts[e] as number);
        for (let t = a.ruleOffsets[rule] as number; t < (a.ruleOffsets[rule + 1] as number); t++) {
          if (a.hasBytes[t] === 1) this.uncertainChecker.judgeAgainst(a, pool, returnState, this.masksOf(t));
        }
      }
    }
  }

  /** How many states have their masks computed. */
  get numClassifiedStates(): number {
    return this.stateMasks.reduce((n, masks) => n + (masks === null ? 0 : 1), 0);
  }

  /** Bytes of memory the automaton and the masks computed so far hold (masks shared by signature included). */
  get byteSize(): number {
    const a = this.automaton;
    let bytes = a.trans.byteLength + a.callStarts.byteLength * 2 + a.numStates * 16;
    for (const masks of this.stateMasks) if (masks !== null) bytes += masks.byteSize;
    return bytes;
  }

  lookupChecked(key: string): Int32Array | null {
    const hit = this.checked.get(key);
    if (hit === undefined) return null;
    this.checked.delete(key);
    this.checked.set(key, hit);
    return hit;
  }

  storeChecked(key: string, passed: Int32Array): void {
    this.checked.set(key, passed);
    if (this.checked.size > checkedCacheLimit) {
      const oldest = this.checked.keys().next();
      if (oldest.done !== true) this.checked.delete(oldest.value);
    }
  }
}
