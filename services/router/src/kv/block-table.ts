// An open-addressing hash table from a 64-bit block hash (as two uint32 halves) to a 32-bit
// worker-slot mask, on typed arrays: a lookup is a few array reads with no allocation, which
// keeps a routing decision over a 1M-block index in microseconds (a Map<bigint> costs ~250 ns
// per lookup on its own). Each entry's key halves and mask sit together (16 bytes, 4 entries per
// cache line), so a lookup in a table far larger than the CPU caches costs one memory miss, not
// three. Linear probing with backward-shift deletion, so there are no tombstones; an entry
// exists iff its mask is non-zero.

const minCapacity = 1024;
/** Grow when more than this fraction of slots is used. */
const maxLoad = 0.5;
/** Words per entry: hi, lo, mask, unused (16-byte aligned entries). */
const stride = 4;
const hiAt = 0;
const loAt = 1;
const maskAt = 2;

function hashSlot(hi: number, lo: number, capacityMask: number): number {
  return (Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> 0) & capacityMask;
}

export class BlockTable {
  #entries: Uint32Array; // [capacity * stride]: hi, lo, mask (0 = empty), unused
  #expiries: Float64Array | null; // [capacity] unix ms, when the table tracks expiry
  #capacityMask: number;
  #size = 0;

  constructor(options: { initialCapacity?: number; trackExpiry?: boolean } = {}) {
    let capacity = minCapacity;
    while (capacity < (options.initialCapacity ?? 0) / maxLoad) capacity *= 2;
    this.#entries = new Uint32Array(capacity * stride);
    this.#expiries = options.trackExpiry === true ? new Float64Array(capacity) : null;
    this.#capacityMask = capacity - 1;
  }

  get size(): number {
    return this.#size;
  }

  get capacity(): number {
    return this.#capacityMask + 1;
  }

  /** The worker mask for a key (0: nobody holds it). */
  get(hi: number, lo: number): number {
    const entries = this.#entries;
    const capacityMask = this.#capacityMask;
    let slot = hashSlot(hi, lo, capacityMask);
    for (;;) {
      const at = slot * stride;
      const mask = entries[at + maskAt]!;
      if (mask === 0) return 0;
      if (entries[at + hiAt] === hi && entries[at + loAt] === lo) return mask;
      slot = (slot + 1) & capacityMask;
    }
  }

  /** Expiry of a key's entry (0 when absent or not tracked). */
  expiry(hi: number, lo: number): number {
    const slot = this.#find(hi, lo);
    return slot === -1 || this.#expiries === null ? 0 : this.#expiries[slot]!;
  }

  /** ORs `bits` into the key's mask; with expiry tracking, keeps the later expiry. */
  add(hi: number, lo: number, bits: number, expiresAtMs = 0): void {
    if (bits === 0) return;
    if ((this.#size + 1) / this.capacity > maxLoad) this.#resize(this.capacity * 2);
    const entries = this.#entries;
    const capacityMask = this.#capacityMask;
    let slot = hashSlot(hi, lo, capacityMask);
    for (;;) {
      const at = slot * stride;
      const mask = entries[at + maskAt]!;
      if (mask === 0) {
        entries[at + hiAt] = hi;
        entries[at + loAt] = lo;
        entries[at + maskAt] = bits >>> 0;
        if (this.#expiries !== null) this.#expiries[slot] = expiresAtMs;
        this.#size++;
        return;
      }
      if (entries[at + hiAt] === hi && entries[at + loAt] === lo) {
        entries[at + maskAt] = (mask | bits) >>> 0;
        if (this.#expiries !== null && expiresAtMs > this.#expiries[slot]!)
          this.#expiries[slot] = expiresAtMs;
        return;
      }
      slot = (slot + 1) & capacityMask;
    }
  }

  /** Clears `bits` from the key's mask, dropping the entry when nothing is left. */
  remove(hi: number, lo: number, bits: number): void {
    const slot = this.#find(hi, lo);
    if (slot === -1) return;
    const at = slot * stride + maskAt;
    const mask = (this.#entries[at]! & ~bits) >>> 0;
    if (mask !== 0) this.#entries[at] = mask;
    else this.#deleteAt(slot);
  }

  /** Drops the key entirely. */
  delete(hi: number, lo: number): void {
    const slot = this.#find(hi, lo);
    if (slot !== -1) this.#deleteAt(slot);
  }

  /** Clears `bits` from every entry (a worker left or dropped its cache). O(capacity). */
  removeBitsEverywhere(bits: number): void {
    const entries = this.#entries;
    const keep = ~bits >>> 0;
    let slot = 0;
    while (slot <= this.#capacityMask) {
      const at = slot * stride + maskAt;
      const mask = entries[at]!;
      if (mask !== 0 && (mask & bits) !== 0) {
        const rest = (mask & keep) >>> 0;
        if (rest !== 0) entries[at] = rest;
        else {
          // Backward shift may move a later entry into this slot: look at it again.
          this.#deleteAt(slot);
          continue;
        }
      }
      slot++;
    }
  }

  /** Number of entries whose mask has any of `bits`. O(capacity). */
  count(bits: number): number {
    const entries = this.#entries;
    let count = 0;
    for (let at = maskAt; at < entries.length; at += stride) if ((entries[at]! & bits) !== 0) count++;
    return count;
  }

  clear(): void {
    this.#entries.fill(0);
    this.#size = 0;
  }

  #find(hi: number, lo: number): number {
    const entries = this.#entries;
    const capacityMask = this.#capacityMask;
    let slot = hashSlot(hi, lo, capacityMask);
    for (;;) {
      const at = slot * stride;
      if (entries[at + maskAt] === 0) return -1;
      if (entries[at + hiAt] === hi && entries[at + loAt] === lo) return slot;
      slot = (slot + 1) & capacityMask;
    }
  }

  #deleteAt(start: number): void {
    const entries = this.#entries;
    const expiries = this.#expiries;
    const capacityMask = this.#capacityMask;
    let hole = start;
    let slot = (start + 1) & capacityMask;
    while (entries[slot * stride + maskAt] !== 0) {
      const at = slot * stride;
      const home = hashSlot(entries[at + hiAt]!, entries[at + loAt]!, capacityMask);
      // Move the entry back into the hole unless its home lies cyclically in (hole, slot].
      const distanceToSlot = (slot - home) & capacityMask;
      const distanceToHole = (hole - home) & capacityMask;
      if (distanceToHole < distanceToSlot) {
        entries.copyWithin(hole * stride, at, at + stride);
        if (expiries !== null) expiries[hole] = expiries[slot]!;
        hole = slot;
      }
      slot = (slot + 1) & capacityMask;
    }
    entries[hole * stride + maskAt] = 0;
    this.#size--;
  }

  #resize(capacity: number): void {
    const entries = this.#entries;
    const expiries = this.#expiries;
    this.#entries = new Uint32Array(capacity * stride);
    this.#expiries = expiries === null ? null : new Float64Array(capacity);
    this.#capacityMask = capacity - 1;
    this.#size = 0;
    for (let slot = 0, at = 0; at < entries.length; slot++, at += stride) {
      const mask = entries[at + maskAt]!;
      if (mask !== 0)
        this.add(entries[at + hiAt]!, entries[at + loAt]!, mask, expiries === null ? 0 : expiries[slot]!);
    }
  }
}
