// Token classification for one automaton state, independent of the stack below it (xgrammar's
// adaptive token mask): walking the token trie from the state, each token is
//   accepted:  some path reads all its bytes without leaving the state's rule, so it is allowed
//              whatever called the rule;
//   uncertain: it can only be read by finishing the rule and continuing in the caller, so the
//              matcher checks it against the real stack;
//   rejected:  everything else.
// Dead prefixes prune whole subtrees. Computed once per state per grammar and cached.
import type { Automaton } from './automaton.ts';
import { ConfigList, close, contextNode, reachedContextEnd, StackPool } from './stack.ts';
import type { TokenTrie } from './token-trie.ts';

/** Tokens accepted by a state, as ids when few or as a bitmask when many. */
export class StateMasks {
  /** Sorted accepted ids, or null when `acceptedBits` holds them. */
  readonly acceptedIds: Int32Array | null;
  /** [ceil(vocabSize / 32)] accepted bits, or null when `acceptedIds` holds them. */
  readonly acceptedBits: Uint32Array | null;
  readonly numAccepted: number;
  /** Tokens to check against the real stack. */
  readonly uncertain: Int32Array;

  constructor(accepted: Int32Array, uncertain: Int32Array, vocabSize: number) {
    const words = Math.ceil(vocabSize / 32);
    this.numAccepted = accepted.length;
    if (accepted.length > words) {
      const bits = new Uint32Array(words);
      for (const id of accepted) bits[id >>> 5] = (bits[id >>> 5] as number) | (1 << (id & 31));
      this.acceptedBits = bits;
      this.acceptedIds = null;
    } else {
      this.acceptedIds = accepted.sort();
      this.acceptedBits = null;
    }
    this.uncertain = uncertain;
  }

  /** ORs the accepted tokens into `mask`. */
  orInto(mask: Uint32Array): void {
    if (this.acceptedBits !== null) {
      const bits = this.acceptedBits;
      for (let w = 0; w < bits.length; w++) mask[w] = (mask[w] as number) | (bits[w] as number);
      return;
    }
    for (const id of this.acceptedIds as Int32Array)
      mask[id >>> 5] = (mask[id >>> 5] as number) | (1 << (id & 31));
  }
}

/** Reusable buffers for classify(); one per compiler (not re-entrant). */
export class ClassifyScratch {
  /** Per trie depth: the one configuration (state, parent) when `many` is 0. */
  readonly state: Int32Array;
  readonly parent: Int32Array;
  /** Per trie depth: 1 when the configurations are in `levels` instead (several, or stack work). */
  readonly many: Uint8Array;
  readonly levels: ConfigList[];
  /** Per depth: the rule may end (the caller would continue) after this prefix. */
  readonly ended: Uint8Array;
  /** Per depth: an ending happened strictly before this prefix's last byte. */
  readonly endedBefore: Uint8Array;
  readonly accepted: Int32Array;
  readonly uncertain: Int32Array;

  constructor(trie: TokenTrie) {
    const depths = trie.maxDepth + 1;
    this.state = new Int32Array(depths);
    this.parent = new Int32Array(depths);
    this.many = new Uint8Array(depths);
    this.levels = Array.from({ length: depths }, () => new ConfigList());
    this.ended = new Uint8Array(depths);
    this.endedBefore = new Uint8Array(depths);
    this.accepted = new Int32Array(trie.tokenIds.length);
    this.uncertain = new Int32Array(trie.tokenIds.length);
  }
}

export function classify(
  automaton: Automaton,
  trie: TokenTrie,
  start: number,
  vocabSize: number,
  scratch: ClassifyScratch,
): StateMasks {
  const { trans, numClasses, classOf, bytesOnly } = automaton;
  const { byte, depth, subtreeEnd, tokensStart, ownEnd, tokensEnd, tokenIds, numNodes } = trie;
  const { state, parent, many, levels, ended, endedBefore, accepted, uncertain } = scratch;
  const pool = new StackPool();
  let numAccepted = 0;
  let numUncertain = 0;
  state[0] = start;
  parent[0] = contextNode;
  many[0] = 0;
  ended[0] = 0;
  endedBefore[0] = 0;
  let node = 1;
  while (node < numNodes) {
    const d = depth[node] as number;
    const b = classOf[byte[node] as number] as number;
    let flags = 0;
    // The configurations after this node's byte: one in state/parent[d], or levels[d].
    let count = 0;
    if (many[d - 1] === 0) {
      const t = trans[(state[d - 1] as number) * numClasses + b] as number;
      if (t >= 0) {
        if (bytesOnly[t] === 1) {
          state[d] = t;
          parent[d] = parent[d - 1] as number;
          many[d] = 0;
          count = 1;
        } else {
          const level = levels[d] as ConfigList;
          level.clear();
          flags = close(automaton, pool, t, parent[d - 1] as number, level);
          count = settle(level, d, scratch);
        }
      }
    } else {
      const from = levels[d - 1] as ConfigList;
      const level = levels[d] as ConfigList;
      level.clear();
      const pd = from.data;
      for (let k = 0; k < from.length; k += 2) {
        const t = trans[(pd[k] as number) * numClasses + b] as number;
        if (t >= 0) flags |= close(automaton, pool, t, pd[k + 1] as number, level);
      }
      count = settle(level, d, scratch);
    }
    const before = (endedBefore[d - 1] as number) | (ended[d - 1] as number);
    const hasEnded = (flags & reachedContextEnd) !== 0;
    if (count === 0 && !hasEnded) {
      if (before !== 0) {
        const end = tokensEnd[node] as number;
        for (let i = tokensStart[node] as number; i < end; i++)
          uncertain[numUncertain++] = tokenIds[i] as number;
      }
      node = subtreeEnd[node] as number;
      continue;
    }
    const own = ownEnd[node] as number;
    for (let i = tokensStart[node] as number; i < own; i++) accepted[numAccepted++] = tokenIds[i] as number;
    if (count === 0) {
      // The rule ended exactly here: longer tokens continue in the caller.
      const end = tokensEnd[node] as number;
      for (let i = own; i < end; i++) uncertain[numUncertain++] = tokenIds[i] as number;
      node = subtreeEnd[node] as number;
      continue;
    }
    ended[d] = hasEnded ? 1 : 0;
    endedBefore[d] = before;
    node++;
  }
  return new StateMasks(accepted.slice(0, numAccepted), uncertain.slice(0, numUncertain), vocabSize);
}

/** Records level d as one configuration (fast path) or many; returns how many. */
function settle(level: ConfigList, d: number, scratch: ClassifyScratch): number {
  const count = level.count;
  if (count === 1) {
    scratch.state[d] = level.data[0] as number;
    scratch.parent[d] = level.data[1] as number;
    scratch.many[d] = 0;
  } else scratch.many[d] = 1;
  return count;
}
