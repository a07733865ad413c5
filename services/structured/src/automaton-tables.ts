// Per-state tables derived from a finished automaton: the fewest bytes to finish each state's
// rule (bytesToFinish, for steering and tests) and the byte runs that let the token-trie walk
// accept whole subtrees at once (runBytes / runLength).

/** A call edge's return state when the caller has nothing left to do after the call. */
export const tailReturn = -1;

/** Fewest bytes from each state to the end of its rule (calls cost their callee's fewest). */
export function finishDistances(
  trans: Int32Array,
  final: Uint8Array,
  numClasses: number,
  callOffsets: Int32Array,
  callStarts: Int32Array,
  callReturns: Int32Array,
): Int32Array {
  const n = final.length;
  const infinity = 0x3fffffff;
  const dist = new Int32Array(n).fill(infinity);
  // Who depends on whom: s is recomputed when a byte target, callee start or return state improves.
  const dependents: number[][] = Array.from({ length: n }, () => []);
  for (let s = 0; s < n; s++) {
    for (let c = 0; c < numClasses; c++) {
      const t = trans[s * numClasses + c] as number;
      if (t >= 0) (dependents[t] as number[]).push(s);
    }
    for (let e = callOffsets[s] as number; e < (callOffsets[s + 1] as number); e++) {
      (dependents[callStarts[e] as number] as number[]).push(s);
      const ret = callReturns[e] as number;
      if (ret !== tailReturn) (dependents[ret] as number[]).push(s);
    }
  }
  const queue: number[] = [];
  const queued = new Uint8Array(n);
  for (let s = 0; s < n; s++) {
    if (final[s] === 1) {
      dist[s] = 0;
      queue.push(s);
      queued[s] = 1;
    }
  }
  for (let head = 0; head < queue.length; head++) {
    const q = queue[head] as number;
    queued[q] = 0;
    for (const s of dependents[q] as number[]) {
      let best = dist[s] as number;
      for (let c = 0; c < numClasses; c++) {
        const t = trans[s * numClasses + c] as number;
        if (t >= 0 && (dist[t] as number) + 1 < best) best = (dist[t] as number) + 1;
      }
      for (let e = callOffsets[s] as number; e < (callOffsets[s + 1] as number); e++) {
        const ret = callReturns[e] as number;
        const cost =
          (dist[callStarts[e] as number] as number) + (ret === tailReturn ? 0 : (dist[ret] as number));
        if (cost < best) best = cost;
      }
      if (best < (dist[s] as number)) {
        dist[s] = best;
        if (queued[s] === 0) {
          queued[s] = 1;
          queue.push(s);
        }
      }
    }
  }
  return dist;
}

/** See Automaton.runBytes / runLength. */
export function runs(
  trans: Int32Array,
  numClasses: number,
  classOf: Uint8Array,
  numStates: number,
): [Uint32Array, Int32Array] {
  const bytes = new Uint32Array(numStates * 8);
  const next = new Int32Array(numStates).fill(-1);
  const classSize = new Int32Array(numClasses);
  for (let b = 0; b < 256; b++)
    classSize[classOf[b] as number] = (classSize[classOf[b] as number] as number) + 1;
  const counts = new Map<number, number>();
  for (let s = 0; s < numStates; s++) {
    counts.clear();
    let best = -1;
    let bestCount = 0;
    for (let c = 0; c < numClasses; c++) {
      const t = trans[s * numClasses + c] as number;
      if (t < 0) continue;
      const n = (counts.get(t) ?? 0) + (classSize[c] as number);
      counts.set(t, n);
      if (n > bestCount || (n === bestCount && t < best)) [best, bestCount] = [t, n];
    }
    next[s] = best;
    if (best < 0) continue;
    for (let b = 0; b < 256; b++) {
      if (trans[s * numClasses + (classOf[b] as number)] === best)
        bytes[s * 8 + (b >>> 5)] = (bytes[s * 8 + (b >>> 5)] as number) | (1 << (b & 31));
    }
  }
  // runLength(s) = 1 + runLength(next) when next's run bytes include s's; cycles are unbounded.
  const unbounded = 0x3fffffff;
  const length = new Int32Array(numStates).fill(-1); // -1 unknown, -2 on the current path
  const within = (inner: number, outer: number): boolean => {
    for (let w = 0; w < 8; w++)
      if (((bytes[inner * 8 + w] as number) & ~(bytes[outer * 8 + w] as number)) !== 0) return false;
    return true;
  };
  for (let s = 0; s < numStates; s++) {
    if (length[s] !== -1) continue;
    const path: number[] = [];
    let v = s;
    // Walk the chain until a known length, an end, or a cycle.
    while (v >= 0 && length[v] === -1) {
      length[v] = -2;
      path.push(v);
      const t = next[v] as number;
      v = t >= 0 && within(v, t) ? t : -1;
    }
    let tail = v < 0 ? 0 : length[v] === -2 ? unbounded : (length[v] as number);
    for (let i = path.length - 1; i >= 0; i--) {
      const u = path[i] as number;
      if ((next[u] as number) < 0) tail = 0;
      else tail = tail >= unbounded ? unbounded : tail + 1;
      length[u] = tail;
    }
  }
  return [bytes, length];
}
