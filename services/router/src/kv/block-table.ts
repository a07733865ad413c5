// An open-addressing hash table from a 64-bit block hash (as two uint32 halves) to a 32-bit
// worker-slot mask, on typed arrays: a lookup is a few array reads with no allocation, which
// keeps a routing decision over a 1M-block index in microseconds (a Map<bigint> costs ~250 ns
// per lookup on its own). Linear probing with backward-shift deletion, so there are no
// tombstones; an entry exists iff its mask is non-zero.

const minCapacity = 1024;
/** Grow when more than this fraction of slots is used. */
const maxLoad = 0.5;

function hashSlot(hi: number, lo: number, capacityMask: number): number {
  return (Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> 0) & capacityMask;
}

export class BlockTable {
  #his: Uint32Array; // [capacity] upper 32 bits of each key
  #los: Uint32Array; // [capacity] lower 32 bits of each key
  #masks: Uint32Array; // [capacity] worker-slot bitmask; 0 = empty
  #expiries: Float64Array | null; // [capacity] unix ms, when the table tracks expiry
  #capacityMask: number;
  #size = 0;

  constructor(options: { initialCapacity?: number; trackExpiry?: boolean } = {}) {
    let capacity = minCapacity;
    while (capacity < (options.initialCapacity ?? 0) / maxLoad) capacity *= 2;
    this.#his = new Uint32Array(capacity);
    this.#los = new Uint32Array(capacity);
    this.#masks = new Uint32Array(capacity);
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
    const capacityMask = this.#capacityMask;
    let slot = hashSlot(hi, lo, capacityMask);
    for (;;) {
      const mask = this.#masks[slot]!;
      if (mask === 0) return 0;
      if (this.#his[slot] === hi && this.#los[slot] === lo) return mask;
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
    const capacityMask = this.#capacityMask;
    let slot = hashSlot(hi, lo, capacityMask);
    for (;;) {
      const mask = this.#masks[slot]!;
      if (mask === 0) {
        this.#his[slot] = hi;
        this.#los[slot] = lo;
        this.#masks[slot] = bits >>> 0;
        if (this.#expiries !== null) this.#expiries[slot] = expiresAtMs;
        this.#size++;
        return;
      }
      if (this.#his[slot] === hi && this.#los[slot] === lo) {
        this.#masks[slot] = (mask | bits) >>> 0;
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
    const mask = (this.#masks[slot]! & ~bits) >>> 0;
    if (mask !== 0) this.#masks[slot] = mask;
    else this.#deleteAt(slot);
  }

  /** Drops the key entirely. */
  delete(hi: number, lo: number): void {
    const slot = this.#find(hi, lo);
    if (slot !== -1) this.#deleteAt(slot);
  }

  /** Clears `bits` from every entry (a worker left or dropped its cache). O(capacity). */
  removeBitsEverywhere(bits: number): void {
    const keep = ~bits >>> 0;
    let slot = 0;
    while (slot <= this.#capacityMask) {
      const mask = this.#masks[slot]!;
      if (mask !== 0 && (mask & bits) !== 0) {
        const rest = (mask & keep) >>> 0;
        if (rest !== 0) this.#masks[slot] = rest;
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
    let count = 0;
    for (let slot = 0; slot <= this.#capacityMask; slot++) if ((this.#masks[slot]! & bits) !== 0) count++;
    return count;
  }

  clear(): void {
    this.#masks.fill(0);
    this.#size = 0;
  }

  #find(hi: number, lo: number): number {
    const capacityMask = this.#capacityMask;
    let slot = hashSlot(hi, lo, capacityMask);
    for (;;) {
      if (this.#masks[slot] === 0) return -1;
      if (this.#his[slot] === hi && this.#los[slot] === lo) return slot;
      slot = (slot + 1) & capacityMask;
    }
  }

  #deleteAt(start: number): void {
    const capacityMask = this.#capacityMask;
    let hole = start;
    let slot = (start + 1) & capacityMask;
    while (this.#masks[slot] !== 0) {
      const home = hashSlot(this.#his[slot]!, this.#los[slot]!, capacityMask);
      // Move the entry back into the hole unless its home lies cyclically in (hole, slot].
      const distanceToSlot = (slot - home) & capacityMask;
      const distanceToHole = (hole - home) & capacityMask;
      if (distanceToHole < distanceToSlot) {
        this.#his[hole] = this.#his[slot]!;
        this.#los[hole] = this.#los[slot]!;
        this.#masks[hole] = this.#masks[slot]!;
        if (this.#expiries !== null) this.#expiries[hole] = this.#expiries[slot]!;
        hole = slot;
      }
      slot = (slot + 1) & capacityMask;
    }
    this.#masks[hole] = 0;
    this.#size--;
  }

  #resize(capacity: number): void {
    const his = this.#his;
    const los = this.#los;
    const masks = this.#masks;
    const expiries = this.#expiries;
    this.#his = new Uint32Array(capacity);
    this.#los = new Uint32Array(capacity);
    this.#masks = new Uint32Array(capacity);
    this.#expiries = expiries === null ? null : new Float64Array(capacity);
    this.#capacityMask = capacity - 1;
    this.#size = 0;
    for (let slot = 0; slot < masks.length; slot++) {
      const mask = masks[slot]!;
      if (mask !== 0) this.add(his[slot]!, los[slot]!, mask, expiries === null ? 0 : expiries[slot]!);
    }
  }
}
