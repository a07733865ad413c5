// A constraint compiled against one vocabulary: the automaton, its per-state token masks
// (computed on first use, or all at once by precompute()), and a cache of which uncertain
// tokens passed for a whole parse configuration (the state inside a long string repeats, so
// its mask is assembled from caches after the first step). Shared by every matcher of it.
import type { Automaton } from './automaton.ts';
import { GrammarMatcher } from './matcher.ts';
import { type ClassifyScratch, classify, type StateMasks } from './state-masks.ts';
import { stateSignature } from './state-signature.ts';
import type { TokenTrie } from './token-trie.ts';
import { UncertainChecker } from './uncertain-check.ts';
import type { Vocabulary } from './vocabulary.ts';

const checkedCacheLimit = 4096;

/** Masks of small call-free states, by signature, shared by the grammars of one vocabulary. */
export class SharedMasks {
  private readonly masks = new Map<string, StateMasks>();
  private readonly limit: number;

  constructor(limit = 1024) {
    this.limit = limit;
  }

  get(signature: string): StateMasks | null {
    return this.masks.get(signature) ?? null;
  }

  set(signature: string, masks: StateMasks): void {
    if (this.masks.size >= this.limit) {
      const oldest = this.masks.keys().next();
      if (oldest.done !== true) this.masks.delete(oldest.value);
    }
    this.masks.set(signature, masks);
  }
}

export class CompiledGrammar {
  /** The cache key of the constraint (canonical JSON of the spec). */
  readonly key: string;
  readonly automaton: Automaton;
  readonly vocabulary: Vocabulary;
  readonly trie: TokenTrie;
  /** Per state: its masks once computed. */
  private readonly stateMasks: (StateMasks | null)[];
  private readonly scratch: ClassifyScratch;
  private readonly shared: SharedMasks;
  /** Scratch for matchers' uncertain-token checks (one at a time: JavaScript is single-threaded). */
  readonly uncertainChecker: UncertainChecker;
  /** Parse configuration (states and stacks) -> uncertain tokens that passed there; LRU. */
  private readonly checked = new Map<string, Int32Array>();

  constructor(
    key: string,
    automaton: Automaton,
    vocabulary: Vocabulary,
    trie: TokenTrie,
    scratch: ClassifyScratch,
    shared: SharedMasks,
  ) {
    this.key = key;
    this.shared = shared;
    this.uncertainChecker = new UncertainChecker(vocabulary.maxTokenBytes);
    this.automaton = automaton;
    this.vocabulary = vocabulary;
    this.trie = trie;
    this.scratch = scratch;
    this.stateMasks = new Array(automaton.numStates).fill(null);
  }

  newMatcher(): GrammarMatcher {
    return new GrammarMatcher(this);
  }

  /** The masks of `state` (classified on first use). */
  masksOf(state: number): StateMasks {
    let masks = this.stateMasks[state];
    if (masks === null || masks === undefined) {
      const signature = stateSignature(this.automaton, state);
      masks = signature === null ? null : this.shared.get(signature);
      if (masks === null) {
        masks = classify(this.automaton, this.trie, state, this.vocabulary.size, this.scratch);
        if (signature !== null) this.shared.set(signature, masks);
      }
      this.stateMasks[state] = masks;
    }
    return masks;
  }

  /** Classifies every state that reads bytes now, so that no decode step pays for it later. */
  precompute(): void {
    for (let s = 0; s < this.automaton.numStates; s++) if (this.automaton.hasBytes[s] === 1) this.masksOf(s);
  }

  /** How many states have their masks computed. */
  get numClassifiedStates(): number {
    return this.stateMasks.reduce((n, masks) => n + (masks === null ? 0 : 1), 0);
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
