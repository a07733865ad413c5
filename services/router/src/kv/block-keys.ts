// Block hashes as the index stores them: each 64-bit hash split into two uint32 halves
// ([hi0, lo0, hi1, lo1, ...]). Splitting a bigint costs more than a whole table lookup, so it
// happens once, when a prompt is hashed or an event arrives, never inside a decision.

export type BlockKeys = Uint32Array; // [2 * numBlocks] (hi, lo) pairs

const mask32 = 0xffffffffn;

export function toBlockKeys(hashes: readonly bigint[]): BlockKeys {
  const keys = new Uint32Array(hashes.length * 2);
  hashes.forEach((hash, i) => {
    keys[2 * i] = Number((hash >> 32n) & mask32);
    keys[2 * i + 1] = Number(hash & mask32);
  });
  return keys;
}

export function fromBlockKey(hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

export function numBlocks(keys: BlockKeys): number {
  return keys.length >>> 1;
}
