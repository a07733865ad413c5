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

/** Whether the start reaches a final state (calls count only into `productive` rules). */
export function canFinish(dfa: RuleDfa, numClasses: number, productive: (rule: number) => boolean): boolean {
  const seen = new Uint8Array(dfa.numStates);
  const stack = [0];
  seen[0] = 1;
  while (stack.length > 0) {
    const s = stack.pop() as number;
    if (dfa.final[s] === 1) return true;
    const visit = (t: number): void => {
      if (t >= 0 && seen[t] === 0) {
        seen[t] = 1;
        stack.push(t);
      }
    };
    for (let c = 0; c < numClasses; c++) visit(dfa.trans[s * numClasses + c] as number);
    const edges = dfa.calls[s] as number[];
    for (let i = 0; i < edges.length; i += 2)
      if (productive(edges[i] as number)) visit(edges[i + 1] as number);
  }
  return false;
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

/**
 * Hopcroft's partition refinement: merges states no input (bytes or calls) can tell apart.
 * Calls are symbols of their own (one per callee). The start state stays 0.
 */
export function minimize(dfa: RuleDfa, numClasses: number): RuleDfa {
  const n = dfa.numStates;
  const dead = n; // an explicit sink for missing transitions
  const total = n + 1;
  // Symbols: byte classes, then one per callee rule.
  const callees = new Map<number, number>();
  for (const edges of dfa.calls)
    for (let i = 0; i < edges.length; i += 2)
      if (!callees.has(edges[i] as number)) callees.set(edges[i] as number, numClasses + callees.size);
  const numSymbols = numClasses + callees.size;
  const target = new Int32Array(total * numSymbols).fill(dead);
  for (let s = 0; s < n; s++) {
    for (let c = 0; c < numClasses; c++) {
      const t = dfa.trans[s * numClasses + c] as number;
      if (t >= 0) target[s * numSymbols + c] = t;
    }
    const edges = dfa.calls[s] as number[];
    for (let i = 0; i < edges.length; i += 2)
      target[s * numSymbols + (callees.get(edges[i] as number) as number)] = edges[i + 1] as number;
  }
  // Inverse transitions: for (symbol, t), the states that go to t on it.
  const inverseStart = new Int32Array(numSymbols * total + 1);
  for (let s = 0; s < total; s++) {
    for (let a = 0; a < numSymbols; a++) {
      const key = a * total + (target[s * numSymbols + a] as number) + 1;
      inverseStart[key] = (inverseStart[key] as number) + 1;
    }
  }
  for (let i = 1; i < inverseStart.length; i++)
    inverseStart[i] = (inverseStart[i] as number) + (inverseStart[i - 1] as number);
  const inverse = new Int32Array(total * numSymbols);
  const fill = inverseStart.slice(0, -1);
  for (let s = 0; s < total; s++) {
    for (let a = 0; a < numSymbols; a++) {
      const key = a * total + (target[s * numSymbols + a] as number);
      inverse[fill[key] as number] = s;
      fill[key] = (fill[key] as number) + 1;
    }
  }
  // Blocks as ranges of `elements`; `location` is each state's index in it.
  const elements = new Int32Array(total);
  const location = new Int32Array(total);
  const block = new Int32Array(total);
  const blockStart: number[] = [];
  const blockEnd: number[] = [];
  const marked: number[] = [];
  let k = 0;
  for (const wantFinal of [1, 0]) {
    const first = k;
    for (let s = 0; s < total; s++) {
      if ((s < n ? (dfa.final[s] as number) : 0) === wantFinal) {
        elements[k] = s;
        location[s] = k;
        block[s] = blockStart.length;
        k++;
      }
    }
    if (k > first) {
      blockStart.push(first);
      blockEnd.push(k);
      marked.push(0);
    }
  }
  const work: number[] = blockStart.map((_, b) => b);
  const inWork = blockStart.map(() => true);
  const touched: number[] = [];
  while (work.length > 0) {
    const a = work.pop() as number;
    inWork[a] = false;
    // Snapshot the splitter block (it may split while we use it).
    const members: number[] = [];
    for (let i = blockStart[a] as number; i < (blockEnd[a] as number); i++)
      members.push(elements[i] as number);
    for (let sym = 0; sym < numSymbols; sym++) {
      for (const t of members) {
        const key = sym * total + t;
        for (let i = inverseStart[key] as number; i < (inverseStart[key + 1] as number); i++) {
          const s = inverse[i] as number;
          const b = block[s] as number;
          // Move s into the marked prefix of its block.
          const markEnd = (blockStart[b] as number) + (marked[b] as number);
          const at = location[s] as number;
          if (at < markEnd) continue;
          const other = elements[markEnd] as number;
          elements[markEnd] = s;
          location[s] = markEnd;
          elements[at] = other;
          location[other] = at;
          if (marked[b] === 0) touched.push(b);
          marked[b] = (marked[b] as number) + 1;
        }
      }
      for (const b of touched) {
        const size = (blockEnd[b] as number) - (blockStart[b] as number);
        const m = marked[b] as number;
        marked[b] = 0;
        if (m === size) continue;
        // Split: the marked prefix becomes a new block.
        const fresh = blockStart.length;
        blockStart.push(blockStart[b] as number);
        blockEnd.push((blockStart[b] as number) + m);
        marked.push(0);
        blockStart[b] = (blockStart[b] as number) + m;
        for (let i = blockStart[fresh] as number; i < (blockEnd[fresh] as number); i++)
          block[elements[i] as number] = fresh;
        if (inWork[b] === true) {
          work.push(fresh);
          inWork.push(true);
        } else {
          const smaller = m <= size - m ? fresh : b;
          inWork.push(false);
          work.push(smaller);
          inWork[smaller] = true;
        }
      }
      touched.length = 0;
    }
  }
  // Renumber: the start's block is 0; the dead state's block is dropped.
  const deadBlock = block[dead] as number;
  const order = new Int32Array(blockStart.length).fill(-1);
  let count = 0;
  order[block[0] as number] = count++;
  for (let s = 0; s < n; s++)
    if (order[block[s] as number] === -1 && block[s] !== deadBlock) order[block[s] as number] = count++;
  const trans = new Int32Array(count * numClasses).fill(-1);
  const final = new Uint8Array(count);
  const calls: number[][] = Array.from({ length: count }, () => []);
  const done = new Uint8Array(count);
  for (let s = 0; s < n; s++) {
    if (block[s] === deadBlock) continue;
    const b = order[block[s] as number] as number;
    if (done[b] === 1) continue;
    done[b] = 1;
    final[b] = dfa.final[s] as number;
    for (let c = 0; c < numClasses; c++) {
      const t = dfa.trans[s * numClasses + c] as number;
      trans[b * numClasses + c] =
        t >= 0 && block[t] !== deadBlock ? (order[block[t] as number] as number) : -1;
    }
    const edges = dfa.calls[s] as number[];
    const out = calls[b] as number[];
    for (let i = 0; i < edges.length; i += 2) {
      const t = edges[i + 1] as number;
      if (block[t] !== deadBlock) out.push(edges[i] as number, order[block[t] as number] as number);
    }
  }
  return { numStates: count, trans, final, calls };
}
