// Rendezvous hashing's string hash (the seeded random source is @tandem/common's seededRandom).

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
