// A seedable uniform random source (mulberry32): injected wherever a policy draws, so tests and
// benchmarks replay exactly.

export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 53-bit FNV-1a-style string hash, for rendezvous hashing. */
export function hashString(text: string): number {
  let hi = 0x811c9dc5;
  let lo = 0x01000193;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    hi = Math.imul(hi ^ c, 0x01000193) >>> 0;
    lo = Math.imul(lo ^ c ^ (hi >>> 7), 0x5bd1e995) >>> 0;
  }
  lo = Math.imul(lo ^ (lo >>> 13), 0x85ebca6b) >>> 0;
  return (hi & 0x1fffff) * 4294967296 + lo;
}
