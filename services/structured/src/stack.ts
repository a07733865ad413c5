// Return stacks of the pushdown automaton, hash-consed so that equal stacks are one node id and
// a set of parse configurations dedupes by comparing numbers. A configuration is a pair
// (state, parent node): the state reading in the innermost rule, the parent holding the
// caller's return state and its own parent.
import { type Automaton, tailReturn } from './automaton.ts';

/** Bottom of every real stack: popping to it ends the grammar. */
export const rootNode = 0;
/** Bottom used when classifying tokens for a state alone: popping to it depends on the caller. */
export const contextNode = 1;

/** close() flags */
export const reachedRootEnd = 1;
export const reachedContextEnd = 2;

const parentLimit = 2 ** 26;

export class StackPool {
  private states: Int32Array;
  private parents: Int32Array;
  private count = 2;
  private readonly ids = new Map<number, number>();

  constructor(capacity = 64) {
    this.states = new Int32Array(Math.max(capacity, 2)).fill(-1);
    this.parents = new Int32Array(Math.max(capacity, 2)).fill(-1);
  }

  /** The node (returnState, parent), interned. */
  push(returnState: number, parent: number): number {
    const key = returnState * parentLimit + parent;
    const known = this.ids.get(key);
    if (known !== undefined) return known;
    if (this.count >= parentLimit) throw new RangeError('parse stack pool exhausted');
    if (this.count === this.states.length) this.grow();
    const id = this.count++;
    this.states[id] = returnState;
    this.parents[id] = parent;
    this.ids.set(key, id);
    return id;
  }

  state(node: number): number {
    return this.states[node] as number;
  }

  parent(node: number): number {
    return this.parents[node] as number;
  }

  /** Return states from the top of `node` down to the bottom, e.g. "12,7" (a cache key). */
  describe(node: number): string {
    let out = '';
    for (let n = node; n > contextNode; n = this.parents[n] as number) out += `${this.states[n]},`;
    return out;
  }

  /** Bytes needed to finish every frame of `node` (the caller's remaining rules). */
  bytesToFinish(automaton: Automaton, node: number): number {
    let total = 0;
    for (let n = node; n > contextNode; n = this.parents[n] as number) {
      total += automaton.bytesToFinish[this.states[n] as number] as number;
    }
    return total;
  }

  private grow(): void {
    const states = new Int32Array(this.states.length * 2).fill(-1);
    const parents = new Int32Array(this.parents.length * 2).fill(-1);
    states.set(this.states);
    parents.set(this.parents);
    this.states = states;
    this.parents = parents;
  }
}

/** A growable list of configurations [state0, parent0, state1, parent1, ...] without duplicates. */
export class ConfigList {
  data: Int32Array;
  length = 0;

  constructor(capacity = 8) {
    this.data = new Int32Array(capacity * 2);
  }

  get count(): number {
    return this.length >> 1;
  }

  clear(): void {
    this.length = 0;
  }

  add(state: number, parent: number): void {
    const d = this.data;
    for (let i = 0; i < this.length; i += 2) if (d[i] === state && d[i + 1] === parent) return;
    if (this.length === d.length) {
      const bigger = new Int32Array(d.length * 2);
      bigger.set(d);
      this.data = bigger;
    }
    this.data[this.length++] = state;
    this.data[this.length++] = parent;
  }

  copyFrom(other: ConfigList): void {
    if (this.data.length < other.length) this.data = new Int32Array(other.data.length);
    this.data.set(other.data.subarray(0, other.length));
    this.length = other.length;
  }
}

const work: number[] = [];
const visited: number[] = [];

/**
 * Adds to `out` every configuration reachable from (state, parent) without reading a byte
 * (entering calls, returning from finished rules) that can read a byte; returns the
 * reachedRootEnd / reachedContextEnd flags met on the way.
 */
export function close(
  automaton: Automaton,
  pool: StackPool,
  state: number,
  parent: number,
  out: ConfigList,
): number {
  const { final, hasBytes, callOffsets, callStarts, callReturns } = automaton;
  let flags = 0;
  work.length = 0;
  visited.length = 0;
  work.push(state, parent);
  while (work.length > 0) {
    const p = work.pop() as number;
    const s = work.pop() as number;
    let seen = false;
    for (let i = 0; i < visited.length; i += 2) {
      if (visited[i] === s && visited[i + 1] === p) {
        seen = true;
        break;
      }
    }
    if (seen) continue;
    visited.push(s, p);
    if (hasBytes[s] === 1) out.add(s, p);
    const end = callOffsets[s + 1] as number;
    for (let e = callOffsets[s] as number; e < end; e++) {
      const ret = callReturns[e] as number;
      work.push(callStarts[e] as number, ret === tailReturn ? p : pool.push(ret, p));
    }
    if (final[s] === 1) {
      if (p === rootNode) flags |= reachedRootEnd;
      else if (p === contextNode) flags |= reachedContextEnd;
      else work.push(pool.state(p), pool.parent(p));
    }
  }
  return flags;
}

/**
 * Reads `bytes` from the configurations in `from`; the survivors go to `out`. Returns -1 when
 * the bytes cannot be read, else the end flags after the last byte (0: more input needed or
 * possible, with `out` non-empty).
 */
export function advance(
  automaton: Automaton,
  pool: StackPool,
  from: ConfigList,
  bytes: Uint8Array,
  out: ConfigList,
  scratch: ConfigList,
): number {
  let current = from;
  let next = bytes.length % 2 === 1 ? out : scratch;
  let flags = 0;
  if (bytes.length === 0) return -1;
  for (let i = 0; i < bytes.length; i++) {
    next.clear();
    flags = 0;
    const byte = bytes[i] as number;
    const d = current.data;
    for (let k = 0; k < current.length; k += 2) {
      const t = automaton.step(d[k] as number, byte);
      if (t >= 0) flags |= close(automaton, pool, t, d[k + 1] as number, next);
    }
    if (next.length === 0 && (flags === 0 || i < bytes.length - 1)) return -1;
    current = next;
    next = next === out ? scratch : out;
  }
  return flags;
}
