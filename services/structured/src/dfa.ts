// One rule's NFA made deterministic over byte classes (subset construction), then trimmed to
// the states that can still finish and minimised (Moore refinement). Calls are symbols like
// bytes: a DFA state may both read a byte and call a rule, which the matcher explores together.
import type { Nfa } from './nfa.ts';

export interface ByteClasses {
  /** byte -> class; classes are contiguous byte ranges numbered in byte order. */
  classOf: Uint8Array;
  numClasses: number;
}

export interface RuleDfa {
  numStates: number;
  /** [numStates * numClasses] next state or -1. The start state is 0. */
  trans: Int32Array;
  final: Uint8Array;
  /** Per state: flat [ruleIndex, target, ...]. */
  calls: number[][];
}

/** The coarsest partition of bytes that every byte range in the NFAs respects. */
export function byteClassesOf(nfas: readonly Nfa[]): ByteClasses {
  const boundary = new Uint8Array(257);
  for (const nfa of nfas) {
    for (const edges of nfa.bytes) {
      for (let i = 0; i < edges.length; i += 3) {
        boundary[edges[i] as number] = 1;
        boundary[(edges[i + 1] as number) + 1] = 1;
      }
    }
  }
  const classOf = new Uint8Array(256);
  let current = 0;
  for (let b = 0; b < 256; b++) {
    if (b > 0 && boundary[b] === 1) current++;
    classOf[b] = current;
  }
  return { classOf, numClasses: current + 1 };
}

export function determinize(
  nfa: Nfa,
  classes: ByteClasses,
  maxStates: number,
  onTooLarge: () => never,
): RuleDfa {
  const { classOf, numClasses } = classes;
  const sets: number[][] = [];
  const ids = new Map<string, number>();
  const trans: number[] = [];
  const final: number[] = [];
  const calls: number[][] = [];
  const intern = (seeds: number[]): number => {
    const set = epsilonClosure(nfa, seeds);
    const key = set.join(',');
    let id = ids.get(key);
    if (id === undefined) {
      if (sets.length >= maxStates) onTooLarge();
      id = sets.length;
      ids.set(key, id);
      sets.push(set);
    }
    return id;
  };
  intern([nfa.start]);
  const buckets: number[][] = Array.from({ length: numClasses }, () => []);
  for (let s = 0; s < sets.length; s++) {
    const set = sets[s] as number[];
    for (const bucket of buckets) bucket.length = 0;
    const callTargets = new Map<number, number[]>();
    let isFinal = 0;
    for (const q of set) {
      if (q === nfa.accept) isFinal = 1;
      const edges = nfa.bytes[q] as number[];
      for (let i = 0; i < edges.length; i += 3) {
        const lo = classOf[edges[i] as number] as number;
        const hi = classOf[edges[i + 1] as number] as number;
        for (let c = lo; c <= hi; c++) (buckets[c] as number[]).push(edges[i + 2] as number);
      }
      const callEdges = nfa.calls[q] as number[];
      for (let i = 0; i < callEdges.length; i += 2) {
        const rule = callEdges[i] as number;
        const list = callTargets.get(rule) ?? [];
        list.push(callEdges[i + 1] as number);
        callTargets.set(rule, list);
      }
    }
    final[s] = isFinal;
    for (let c = 0; c < numClasses; c++) {
      const bucket = buckets[c] as number[];
      trans[s * numClasses + c] = bucket.length === 0 ? -1 : intern(bucket);
    }
    const stateCalls: number[] = [];
    for (const [rule, targets] of callTargets) stateCalls.push(rule, intern(targets));
    calls[s] = stateCalls;
  }
  return { numStates: sets.length, trans: Int32Array.from(trans), final: Uint8Array.from(final), calls };
}

function epsilonClosure(nfa: Nfa, seeds: readonly number[]): number[] {
  const seen = new Set<number>(seeds);
  const stack = [...seeds];
  while (stack.length > 0) {
    const q = stack.pop() as number;
    for (const next of nfa.eps[q] as number[]) {
      if (!seen.has(next)) {
        seen.add(next);
        stack.push(next);
      }
    }
  }
  return [...seen].sort((a, b) => a - b);
}

/**
 * Keeps the states reachable from the start that can reach a final state; call edges count
 * only into `productive` rules. Returns null when the start itself cannot finish.
 */
export function trim(
  dfa: RuleDfa,
  numClasses: number,
  productive: (rule: number) => boolean,
): RuleDfa | null {
  const n = dfa.numStates;
  const reverse: number[][] = Array.from({ length: n }, () => []);
  const liveCalls = dfa.calls.map((edges) => {
    const kept: number[] = [];
    for (let i = 0; i < edges.length; i += 2)
      if (productive(edges[i] as number)) kept.push(edges[i] as number, edges[i + 1] as number);
    return kept;
  });
  for (let s = 0; s < n; s++) {
    for (let c = 0; c < numClasses; c++) {
      const t = dfa.trans[s * numClasses + c] as number;
      if (t >= 0) (reverse[t] as number[]).push(s);
    }
    const edges = liveCalls[s] as number[];
    for (let i = 0; i < edges.length; i += 2) (reverse[edges[i + 1] as number] as number[]).push(s);
  }
  const canFinish = new Uint8Array(n);
  const stack: number[] = [];
  for (let s = 0; s < n; s++) {
    if (dfa.final[s] === 1) {
      canFinish[s] = 1;
      stack.push(s);
    }
  }
  while (stack.length > 0) {
    for (const p of reverse[stack.pop() as number] as number[]) {
      if (canFinish[p] === 0) {
        canFinish[p] = 1;
        stack.push(p);
      }
    }
  }
  if (canFinish[0] === 0) return null;
  // Forward reachability over live edges, renumbering in discovery order (start stays 0).
  const newId = new Int32Array(n).fill(-1);
  const order = [0];
  newId[0] = 0;
  for (let k = 0; k < order.length; k++) {
    const s = order[k] as number;
    const visit = (t: number): void => {
      if (t >= 0 && canFinish[t] === 1 && newId[t] === -1) {
        newId[t] = order.length;
        order.push(t);
      }
    };
    for (let c = 0; c < numClasses; c++) visit(dfa.trans[s * numClasses + c] as number);
    const edges = liveCalls[s] as number[];
    for (let i = 0; i < edges.length; i += 2) visit(edges[i + 1] as number);
  }
  const trans = new Int32Array(order.length * numClasses);
  const final = new Uint8Array(order.length);
  const calls: number[][] = [];
  order.forEach((s, i) => {
    for (let c = 0; c < numClasses; c++) {
      const t = dfa.trans[s * numClasses + c] as number;
      trans[i * numClasses + c] = t >= 0 ? (newId[t] as number) : -1;
    }
    final[i] = dfa.final[s] as number;
    const kept: number[] = [];
    const edges = liveCalls[s] as number[];
    for (let j = 0; j < edges.length; j += 2) {
      const t = newId[edges[j + 1] as number] as number;
      if (t >= 0) kept.push(edges[j] as number, t);
    }
    calls[i] = kept;
  });
  return { numStates: order.length, trans, final, calls };
}

/** Moore refinement: merges states no input (bytes or calls) can tell apart. Start stays 0. */
export function minimize(dfa: RuleDfa, numClasses: number): RuleDfa {
  const n = dfa.numStates;
  let block = Int32Array.from(dfa.final);
  let numBlocks = new Set(block).size;
  for (;;) {
    const signatures = new Map<string, number>();
    const next = new Int32Array(n);
    for (let s = 0; s < n; s++) {
      const parts: number[] = [block[s] as number];
      for (let c = 0; c < numClasses; c++) {
        const t = dfa.trans[s * numClasses + c] as number;
        parts.push(t >= 0 ? (block[t] as number) : -1);
      }
      const edges = dfa.calls[s] as number[];
      const callParts: string[] = [];
      for (let i = 0; i < edges.length; i += 2)
        callParts.push(`${edges[i]}:${block[edges[i + 1] as number]}`);
      const key = `${parts.join(',')}|${callParts.sort().join(',')}`;
      let id = signatures.get(key);
      if (id === undefined) {
        id = signatures.size;
        signatures.set(key, id);
      }
      next[s] = id;
    }
    const stable = signatures.size === numBlocks;
    block = next;
    numBlocks = signatures.size;
    if (stable) break;
  }
  // Renumber blocks so that the start's block is 0.
  const order = new Int32Array(numBlocks).fill(-1);
  let count = 0;
  order[block[0] as number] = count++;
  for (let s = 0; s < n; s++) if (order[block[s] as number] === -1) order[block[s] as number] = count++;
  const trans = new Int32Array(numBlocks * numClasses).fill(-1);
  const final = new Uint8Array(numBlocks);
  const calls: number[][] = Array.from({ length: numBlocks }, () => []);
  const done = new Uint8Array(numBlocks);
  for (let s = 0; s < n; s++) {
    const b = order[block[s] as number] as number;
    if (done[b] === 1) continue;
    done[b] = 1;
    final[b] = dfa.final[s] as number;
    for (let c = 0; c < numClasses; c++) {
      const t = dfa.trans[s * numClasses + c] as number;
      trans[b * numClasses + c] = t >= 0 ? (order[block[t] as number] as number) : -1;
    }
    const edges = dfa.calls[s] as number[];
    const out = calls[b] as number[];
    for (let i = 0; i < edges.length; i += 2)
      out.push(edges[i] as number, order[block[edges[i + 1] as number] as number] as number);
  }
  return { numStates: numBlocks, trans, final, calls };
}
