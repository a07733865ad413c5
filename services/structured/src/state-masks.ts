// Token classification for one automaton state, independent of the stack below it (xgrammar's
// adaptive token mask): walking the token trie from the state, each token is
//   accepted:  some path reads all its bytes without leaving the state's rule, so it is allowed
//              whatever called the rule;
//   uncertain: it can only be read by finishing the rule part-way through the token and going
//              on in the caller; we keep the rests of the token after each place the rule can
//              finish (as ids of a vocabulary-wide table of byte strings), and the matcher
//              checks those rests against the real caller;
//   rejected:  everything else.
// Dead prefixes prune whole subtrees. Computed once per state (see compiled-grammar.ts).
import type { Automaton } from './automaton.ts';
import { ConfigList, close, contextNode, reachedContextEnd, StackPool } from './stack.ts';
import type { TokenTrie } from './token-trie.ts';

/** Tokens accepted by a state (as ids when few, as a bitmask when many) and the uncertain ones. */
export class StateMasks {
  /** Sorted accepted ids, or null when `acceptedBits` holds them. */
  readonly acceptedIds: Int32Array | null;
  /** [ceil(vocabSize / 32)] accepted bits, or null when `acceptedIds` holds them. */
  readonly acceptedBits: Uint32Array | null;
  readonly numAccepted: number;
  /** Tokens to check against the real caller, in trie (byte) order. */
  readonly uncertain: Int32Array;
  /** uncertain[i] is allowed if the caller reads one of rests[restStart[i] .. restStart[i + 1]). */
  readonly restStart: Int32Array;
  /** Ids in the compiler's TokenRests. */
  readonly rests: Int32Array;

  /** `accepted`: the accepted ids, or (restoring masks made elsewhere) their bitmask and count. */
  constructor(
    accepted: Int32Array | { bits: Uint32Array; count: number },
    uncertain: Int32Array,
    restStart: Int32Array,
    rests: Int32Array,
    vocabSize: number,
  ) {
    const words = Math.ceil(vocabSize / 32);
    if (!(accepted instanceof Int32Array)) {
      this.numAccepted = accepted.count;
      this.acceptedBits = accepted.bits;
      this.acceptedIds = null;
    } else if (accepted.length > words) {
      this.numAccepted = accepted.length;
      const bits = new Uint32Array(words);
      for (const id of accepted) bits[id >>> 5] = (bits[id >>> 5] as number) | (1 << (id & 31));
      this.acceptedBits = bits;
      this.acceptedIds = null;
    } else {
      this.numAccepted = accepted.length;
      this.acceptedIds = accepted.sort();
      this.acceptedBits = null;
    }
    this.uncertain = uncertain;
    this.restStart = restStart;
    this.rests = rests;
  }

  /** Bytes held (for the compiler's cache budget). */
  get byteSize(): number {
    return (
      (this.acceptedBits?.byteLength ?? 0) +
      (this.acceptedIds?.byteLength ?? 0) +
      this.uncertain.byteLength +
      this.restStart.byteLength +
      this.rests.byteLength
    );
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
  /** Per depth: how many of the depths 1..d on the current path may end the rule... */
  readonly numEnds: Int32Array;
  /** ...and which: endDepths[0 .. numEnds[d]). */
  readonly endDepths: Uint16Array;
  readonly accepted: Int32Array;
  readonly uncertain: Int32Array;
  readonly restStart: Int32Array;
  rests: Int32Array;

  constructor(trie: TokenTrie) {
    const depths = trie.maxDepth + 1;
    this.state = new Int32Array(depths);
    this.parent = new Int32Array(depths);
    this.many = new Uint8Array(depths);
    this.levels = Array.from({ length: depths }, () => new ConfigList());
    this.numEnds = new Int32Array(depths);
    this.endDepths = new Uint16Array(depths);
    this.accepted = new Int32Array(trie.tokenIds.length);
    this.uncertain = new Int32Array(trie.tokenIds.length);
    this.restStart = new Int32Array(trie.tokenIds.length + 1);
    this.rests = new Int32Array(1024);
  }
}

/** The byte strings that follow a rule's end inside tokens, interned (one table per vocabulary). */
export class TokenRests {
  /** token id * 65536 + offset -> rest id */
  private readonly byTokenOffset = new Map<number, number>();
  /** hash of the bytes -> rest ids with that hash */
  private readonly byHash = new Map<number, number[]>();
  readonly bytes: Uint8Array[] = [];

  idOf(tokenId: number, token: Uint8Array, offset: number): number {
    const key = tokenId * 65536 + offset;
    const known = this.byTokenOffset.get(key);
    if (known !== undefined) return known;
    const rest = token.subarray(offset);
    let hash = 0x811c9dc5;
    for (let i = 0; i < rest.length; i++) hash = Math.imul(hash ^ (rest[i] as number), 0x01000193);
    let bucket = this.byHash.get(hash);
    if (bucket === undefined) {
      bucket = [];
      this.byHash.set(hash, bucket);
    }
    let id = bucket.find((candidate) => sameBytes(this.bytes[candidate] as Uint8Array, rest));
    if (id === undefined) {
      id = this.bytes.length;
      this.bytes.push(rest);
      bucket.push(id);
    }
    this.byTokenOffset.set(key, id);
    return id;
  }

  /**
   * Appends rests another thread's table interned (ids `start`, `start + 1`, ...), so this table
   * mirrors it: grammars restored from that thread refer to rests by its ids.
   */
  adopt(start: number, rests: readonly Uint8Array[]): void {
    if (start !== this.bytes.length) {
      throw new RangeError(`rests from id ${start} do not follow this table's ${this.bytes.length}`);
    }
    this.bytes.push(...rests);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function classify(
  automaton: Automaton,
  trie: TokenTrie,
  start: number,
  vocabSize: number,
  scratch: ClassifyScratch,
  tokenRests: TokenRests,
  tokenBytes: readonly (Uint8Array | null)[],
): StateMasks {
  const { trans, numClasses, classOf, bytesOnly, runBytes, runLength } = automaton;
  const {
    byte,
    depth,
    subtreeEnd,
    tokensStart,
    ownEnd,
    tokensEnd,
    tokenIds,
    numNodes,
    bytesBelow,
    depthBelow,
  } = trie;
  const { state, parent, many, levels, numEnds, endDepths, accepted, uncertain, restStart } = scratch;
  const pool = new StackPool();
  // A rule nothing calls (the root) ending inside a token ends the output: the rest is refused.
  const callerless = automaton.ruleCalled[automaton.ruleOf(start)] === 0;
  let numAccepted = 0;
  let numUncertain = 0;
  let numRests = 0;
  /** Tokens tokenIds[from, to) are uncertain, leaving the rule at the first `ends` end depths. */
  const addUncertain = (from: number, to: number, ends: number): void => {
    if (callerless) return;
    for (let i = from; i < to; i++) {
      const id = tokenIds[i] as number;
      uncertain[numUncertain] = id;
      restStart[numUncertain] = numRests;
      numUncertain++;
      if (numRests + ends > scratch.rests.length) {
        const bigger = new Int32Array(Math.max(scratch.rests.length * 2, numRests + ends));
        bigger.set(scratch.rests);
        scratch.rests = bigger;
      }
      const bytes = tokenBytes[id] as Uint8Array;
      for (let e = 0; e < ends; e++)
        scratch.rests[numRests++] = tokenRests.idOf(id, bytes, endDepths[e] as number);
    }
  };
  state[0] = start;
  parent[0] = contextNode;
  many[0] = 0;
  numEnds[0] = 0;
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
        if (
          (runLength[t] as number) >= (depthBelow[node] as number) &&
          within(bytesBelow, node, runBytes, t)
        ) {
          // Every byte below follows t's run, which is long enough: the whole subtree is accepted.
          const end = tokensEnd[node] as number;
          for (let i = tokensStart[node] as number; i < end; i++)
            accepted[numAccepted++] = tokenIds[i] as number;
          node = subtreeEnd[node] as number;
          continue;
        }
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
    const endsBefore = numEnds[d - 1] as number;
    const hasEnded = (flags & reachedContextEnd) !== 0;
    if (count === 0 && !hasEnded) {
      if (endsBefore > 0) addUncertain(tokensStart[node] as number, tokensEnd[node] as number, endsBefore);
      node = subtreeEnd[node] as number;
      continue;
    }
    const own = ownEnd[node] as number;
    for (let i = tokensStart[node] as number; i < own; i++) accepted[numAccepted++] = tokenIds[i] as number;
    if (hasEnded) endDepths[endsBefore] = d;
    numEnds[d] = endsBefore + (hasEnded ? 1 : 0);
    if (count === 0) {
      // The rule ended exactly here: longer tokens continue in the caller.
      addUncertain(own, tokensEnd[node] as number, numEnds[d] as number);
      node = subtreeEnd[node] as number;
      continue;
    }
    node++;
  }
  restStart[numUncertain] = numRests;
  return new StateMasks(
    accepted.slice(0, numAccepted),
    uncertain.slice(0, numUncertain),
    restStart.slice(0, numUncertain + 1),
    scratch.rests.slice(0, numRests),
    vocabSize,
  );
}

/** Whether every byte below `node` is one of `state`'s run bytes. */
function within(bytesBelow: Uint32Array, node: number, runBytes: Uint32Array, state: number): boolean {
  const s = state * 8;
  const n = node * 8;
  for (let w = 0; w < 8; w++)
    if (((bytesBelow[n + w] as number) & ~(runBytes[s + w] as number)) !== 0) return false;
  return true;
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
