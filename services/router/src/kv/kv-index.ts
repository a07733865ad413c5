// Which worker holds which KV block: built exactly from the workers' KV events, plus optimistic
// entries written at routing time (so a burst of one new prefix lands on one worker before its
// first event arrives). An optimistic entry expires after `optimisticTtlMs` unless the worker's
// own "stored" event confirms it. Workers occupy slots 0..31 (a 32-bit mask per block); a 33rd
// worker gets no slot (-1): it is still routed to, only never for its cache.

import { type BlockKeys, numBlocks } from './block-keys.ts';
import { BlockTable } from './block-table.ts';

export const maxIndexedWorkers = 32;

interface PendingBatch {
  expiresAtMs: number;
  keys: BlockKeys;
}

export class KvIndex {
  readonly #confirmed: BlockTable;
  readonly #pending = new BlockTable({ trackExpiry: true });
  /** Insertion order equals expiry order (one TTL), so expiry pops from the front. */
  #pendingBatches: PendingBatch[] = [];
  #pendingHead = 0;
  readonly #slotByWorker = new Map<string, number>();
  readonly #optimisticTtlMs: number;

  constructor(options: { optimisticTtlMs: number; initialCapacity?: number }) {
    this.#optimisticTtlMs = options.optimisticTtlMs;
    this.#confirmed = new BlockTable({ initialCapacity: options.initialCapacity ?? 0 });
  }

  get numBlocks(): number {
    return this.#confirmed.size;
  }

  get numPendingBlocks(): number {
    return this.#pending.size;
  }

  /** The worker's slot, allocating one on first sight; -1 when all slots are taken. */
  slotOf(workerId: string): number {
    const existing = this.#slotByWorker.get(workerId);
    if (existing !== undefined) return existing;
    const used = new Set(this.#slotByWorker.values());
    for (let slot = 0; slot < maxIndexedWorkers; slot++) {
      if (!used.has(slot)) {
        this.#slotByWorker.set(workerId, slot);
        return slot;
      }
    }
    return -1;
  }

  hasWorker(workerId: string): boolean {
    return this.#slotByWorker.has(workerId);
  }

  /** Forgets everything the worker held and frees its slot. */
  removeWorker(workerId: string): void {
    const slot = this.#slotByWorker.get(workerId);
    if (slot === undefined) return;
    const bit = (1 << slot) >>> 0;
    this.#confirmed.removeBitsEverywhere(bit);
    this.#pending.removeBitsEverywhere(bit);
    this.#slotByWorker.delete(workerId);
  }

  /** The worker's "stored" event: these blocks are now in its cache (confirmed). */
  stored(workerId: string, keys: BlockKeys): void {
    const slot = this.slotOf(workerId);
    if (slot === -1) return;
    const bit = (1 << slot) >>> 0;
    for (let i = 0; i < keys.length; i += 2) {
      const hi = keys[i]!;
      const lo = keys[i + 1]!;
      this.#confirmed.add(hi, lo, bit);
      if (this.#pending.size > 0) this.#pending.remove(hi, lo, bit);
    }
  }

  /** The worker's "removed" event (evictions). */
  removed(workerId: string, keys: BlockKeys): void {
    const slot = this.#slotByWorker.get(workerId);
    if (slot === undefined) return;
    const bit = (1 << slot) >>> 0;
    for (let i = 0; i < keys.length; i += 2) this.#confirmed.remove(keys[i]!, keys[i + 1]!, bit);
  }

  /** The worker dropped its whole cache (or a dump is about to replace what we knew). */
  cleared(workerId: string): void {
    const slot = this.#slotByWorker.get(workerId);
    if (slot === undefined) return;
    this.#confirmed.removeBitsEverywhere((1 << slot) >>> 0);
  }

  /** Number of confirmed blocks the worker holds. O(capacity). */
  numWorkerBlocks(workerId: string): number {
    const slot = this.#slotByWorker.get(workerId);
    return slot === undefined ? 0 : this.#confirmed.count((1 << slot) >>> 0);
  }

  /** Routing chose `workerId` for a prompt with these blocks: assume it will cache them. */
  insertOptimistic(workerId: string, keys: BlockKeys, nowMs: number): void {
    const slot = this.slotOf(workerId);
    if (slot === -1) return;
    const bit = (1 << slot) >>> 0;
    const expiresAtMs = nowMs + this.#optimisticTtlMs;
    for (let i = 0; i < keys.length; i += 2) {
      if ((this.#confirmed.get(keys[i]!, keys[i + 1]!) & bit) === 0) {
        this.#pending.add(keys[i]!, keys[i + 1]!, bit, expiresAtMs);
      }
    }
    this.#pendingBatches.push({ expiresAtMs, keys });
  }

  /** Drops optimistic entries whose time has passed. */
  expire(nowMs: number): void {
    const batches = this.#pendingBatches;
    while (this.#pendingHead < batches.length && batches[this.#pendingHead]!.expiresAtMs <= nowMs) {
      const { keys } = batches[this.#pendingHead]!;
      for (let i = 0; i < keys.length; i += 2) {
        const expiry = this.#pending.expiry(keys[i]!, keys[i + 1]!);
        if (expiry !== 0 && expiry <= nowMs) this.#pending.delete(keys[i]!, keys[i + 1]!);
      }
      this.#pendingHead++;
    }
    if (this.#pendingHead > 1024 && this.#pendingHead * 2 > batches.length) {
      this.#pendingBatches = batches.slice(this.#pendingHead);
      this.#pendingHead = 0;
    }
  }

  /**
   * For each slot in `slotMask`, how many leading blocks of `keys` it holds (confirmed or
   * optimistic), written into `depths[slot]`. Pure: no allocation, no state change.
   */
  matchDepths(keys: BlockKeys, slotMask: number, depths: Uint32Array): void {
    const count = numBlocks(keys);
    let alive = slotMask >>> 0;
    const checkPending = this.#pending.size > 0;
    let block = 0;
    for (; block < count && alive !== 0; block++) {
      const hi = keys[2 * block]!;
      const lo = keys[2 * block + 1]!;
      let holders = this.#confirmed.get(hi, lo);
      if (checkPending) holders |= this.#pending.get(hi, lo);
      const next = (alive & holders) >>> 0;
      let dropped = (alive & ~next) >>> 0;
      while (dropped !== 0) {
        const slot = 31 - Math.clz32(dropped);
        depths[slot] = block;
        dropped = (dropped & ~(1 << slot)) >>> 0;
      }
      alive = next;
    }
    while (alive !== 0) {
      const slot = 31 - Math.clz32(alive);
      depths[slot] = block;
      alive = (alive & ~(1 << slot)) >>> 0;
    }
  }
}
