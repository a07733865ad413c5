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
  /** Configurations per trie depth. */
  readonly levels: ConfigList[];
  /** Per depth: the rule may end (the caller would continue) after this prefix. */
  readonly ended: Uint8Array;
  /** Per depth: an ending happened strictly before this prefix's last byte. */
  readonly endedBefore: Uint8Array;
  accepted: Int32Array;
  uncertain: Int32Array;

  constructor(trie: TokenTrie) {
    this.levels = Array.from({ length: trie.maxDepth + 1 }, () => new ConfigList());
    this.ended = new Uint8Array(trie.maxDepth + 1);
    this.endedBefore = new Uint8Array(trie.maxDepth + 1);
    this.accepted = new Int32Array(trie.tokenIds.length);
    this.uncertain = new Int32Array(trie.tokenIds.length);
  }
}

export function classify(
  automaton: Automaton,
  trie: TokenTrie,
  state: number,
  vocabSize: number,
  scratch: ClassifyScratch,
): StateMasks {
  const { trans, numClasses, classOf, final, callOffsets } = automaton;
  const { byte, depth, subtreeEnd, tokensStart, ownEnd, tokensEnd, tokenIds, numNodes } = trie;
  const { levels, ended, endedBefore, accepted, uncertain } = scratch;
  const pool = new StackPool();
  let numAccepted = 0;
  let numUncertain = 0;
  const root = levels[0] as ConfigList;
  root.clear();
  root.add(state, contextNode);
  ended[0] = 0;
  endedBefore[0] = 0;
  let node = 1;
  while (node < numNodes) {
    const d = depth[node] as number;
    const parentLevel = levels[d - 1] as ConfigList;
    const level = levels[d] as ConfigList;
    level.clear();
    const b = classOf[byte[node] as number] as number;
    let flags = 0;
    const pd = parentLevel.data;
    if (parentLevel.length === 2) {
      // One configuration: the common case, stepped without close() unless it calls or ends.
      const t = trans[(pd[0] as number) * numClasses + b] as number;
      if (t >= 0) {
        if (final[t] === 0 && callOffsets[t] === callOffsets[t + 1]) level.add(t, pd[1] as number);
        else flags = close(automaton, pool, t, pd[1] as number, level);
      }
    } else {
      for (let k = 0; k < parentLevel.length; k += 2) {
        const t = trans[(pd[k] as number) * numClasses + b] as number;
        if (t >= 0) flags |= close(automaton, pool, t, pd[k + 1] as number, level);
      }
    }
    const before = (endedBefore[d - 1] as number) | (ended[d - 1] as number);
    const hasEnded = (flags & reachedContextEnd) !== 0;
    if (level.length === 0 && !hasEnded) {
      if (before !== 0)
        for (let i = tokensStart[node] as number; i < (tokensEnd[node] as number); i++)
          uncertain[numUncertain++] = tokenIds[i] as number;
      node = subtreeEnd[node] as number;
      continue;
    }
    for (let i = tokensStart[node] as number; i < (ownEnd[node] as number); i++)
      accepted[numAccepted++] = tokenIds[i] as number;
    if (level.length === 0) {
      // The rule ended exactly here: longer tokens continue in the caller.
      for (let i = ownEnd[node] as number; i < (tokensEnd[node] as number); i++)
        uncertain[numUncertain++] = tokenIds[i] as number;
      node = subtreeEnd[node] as number;
      continue;
    }
    ended[d] = hasEnded ? 1 : 0;
    endedBefore[d] = before;
    node++;
  }
  return new StateMasks(accepted.slice(0, numAccepted), uncertain.slice(0, numUncertain), vocabSize);
}
