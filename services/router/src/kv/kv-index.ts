// Which worker holds which KV block: built exactly from the workers' KV events, plus optimistic
// entries written at routing time (so a burst of one new prefix lands on one worker before its
// first event arrives). An optimistic entry expires after `optimisticTtlMs` unless the worker's
// own "stored" event confirms it.
//
// Every worker gets a slot (freed slots are reused). Slots come in banks of 32: a bank is one
// block table whose 32-bit masks say which of its workers hold a block, so a match walks one
// table per bank that has candidates and a cluster of any size is indexed.

import { type BlockKeys, numBlocks } from './block-keys.ts';
import { BlockTable } from './block-table.ts';

const slotsPerBank = 32;

interface Bank {
  confirmed: BlockTable;
  pending: BlockTable;
}

interface PendingBatch {
  expiresAtMs: number;
  bank: Bank;
  keys: BlockKeys;
}

const bitOf = (slot: number): number => (1 << (slot % slotsPerBank)) >>> 0;

export class KvIndex {
  readonly #banks: Bank[] = [];
  /** Insertion order equals expiry order (one TTL), so expiry pops from the front. */
  #pendingBatches: PendingBatch[] = [];
  #pendingHead = 0;
  readonly #slotByWorker = new Map<string, number>();
  readonly #freeSlots: number[] = []; // released slots, reused lowest first
  #nextSlot = 0;
  readonly #optimisticTtlMs: number;
  readonly #initialCapacity: number;
  #bankMasks = new Uint32Array(1); // matchDepths scratch: candidate bits per bank

  constructor(options: { optimisticTtlMs: number; initialCapacity?: number }) {
    this.#optimisticTtlMs = options.optimisticTtlMs;
    this.#initialCapacity = options.initialCapacity ?? 0;
  }

  /** (block, bank) entries: a block held by workers of two banks counts twice. */
  get numBlocks(): number {
    let count = 0;
    for (const bank of this.#banks) count += bank.confirmed.size;
    return count;
  }

  get numPendingBlocks(): number {
    let count = 0;
    for (const bank of this.#banks) count += bank.pending.size;
    return count;
  }

  /** Optimistic insert batches not yet expired (bounded by the TTL times the routing rate). */
  get numPendingBatches(): number {
    return this.#pendingBatches.length - this.#pendingHead;
  }

  /** Workers with a slot. */
  get numWorkers(): number {
    return this.#slotByWorker.size;
  }

  /** One more than the highest slot ever given: the length a `depths` array needs. */
  get slotCapacity(): number {
    return this.#nextSlot;
  }

  /** The worker's slot, allocating one on first sight. */
  slotOf(workerId: string): number {
    const existing = this.#slotByWorker.get(workerId);
    if (existing !== undefined) return existing;
    let slot: number;
    if (this.#freeSlots.length > 0) {
      this.#freeSlots.sort((a, b) => a - b);
      slot = this.#freeSlots.shift()!;
    } else {
      slot = this.#nextSlot++;
    }
    this.#slotByWorker.set(workerId, slot);
    const bankIndex = Math.floor(slot / slotsPerBank);
    while (this.#banks.length <= bankIndex) {
      this.#banks.push({
        confirmed: new BlockTable({ initialCapacity: this.#banks.length === 0 ? this.#initialCapacity : 0 }),
        pending: new BlockTable({ trackExpiry: true }),
      });
    }
    return slot;
  }

  hasWorker(workerId: string): boolean {
    return this.#slotByWorker.has(workerId);
  }

  /** Forgets everything the worker held and frees its slot. */
  removeWorker(workerId: string): void {
    const slot = this.#slotByWorker.get(workerId);
    if (slot === undefined) return;
    const bank = this.#bankOf(slot);
    bank.confirmed.removeBitsEverywhere(bitOf(slot));
    bank.pending.removeBitsEverywhere(bitOf(slot));
    this.#slotByWorker.delete(workerId);
    this.#freeSlots.push(slot);
  }

  /** The worker's "stored" event: these blocks are now in its cache (confirmed). */
  stored(workerId: string, keys: BlockKeys): void {
    const slot = this.slotOf(workerId);
    const { confirmed, pending } = this.#bankOf(slot);
    const bit = bitOf(slot);
    for (let i = 0; i < keys.length; i += 2) {
      const hi = keys[i]!;
      const lo = keys[i + 1]!;
      confirmed.add(hi, lo, bit);
      if (pending.size > 0) pending.remove(hi, lo, bit);
    }
  }

  /** The worker's "removed" event (evictions). */
  removed(workerId: string, keys: BlockKeys): void {
    const slot = this.#slotByWorker.get(workerId);
    if (slot === undefined) return;
    const { confirmed } = this.#bankOf(slot);
    const bit = bitOf(slot);
    for (let i = 0; i < keys.length; i += 2) confirmed.remove(keys[i]!, keys[i + 1]!, bit);
  }

  /** The worker dropped its whole cache (or a dump is about to replace what we knew). */
  cleared(workerId: string): void {
    const slot = this.#slotByWorker.get(workerId);
    if (slot === undefined) return;
    this.#bankOf(slot).confirmed.removeBitsEverywhere(bitOf(slot));
  }

  /** Number of confirmed blocks the worker holds. O(capacity). */
  numWorkerBlocks(workerId: string): number {
    const slot = this.#slotByWorker.get(workerId);
    return slot === undefined ? 0 : this.#bankOf(slot).confirmed.count(bitOf(slot));
  }

  /** Routing chose `workerId` for a prompt with these blocks: assume it will cache them. */
  insertOptimistic(workerId: string, keys: BlockKeys, nowMs: number): void {
    const slot = this.slotOf(workerId);
    const bank = this.#bankOf(slot);
    const bit = bitOf(slot);
    const expiresAtMs = nowMs + this.#optimisticTtlMs;
    for (let i = 0; i < keys.length; i += 2) {
      if ((bank.confirmed.get(keys[i]!, keys[i + 1]!) & bit) === 0) {
        bank.pending.add(keys[i]!, keys[i + 1]!, bit, expiresAtMs);
      }
    }
    this.#pendingBatches.push({ expiresAtMs, bank, keys });
  }

  /** Drops optimistic entries whose time has passed. */
  expire(nowMs: number): void {
    const batches = this.#pendingBatches;
    while (this.#pendingHead < batches.length && batches[this.#pendingHead]!.expiresAtMs <= nowMs) {
      const { bank, keys } = batches[this.#pendingHead]!;
      for (let i = 0; i < keys.length; i += 2) {
        const expiry = bank.pending.expiry(keys[i]!, keys[i + 1]!);
        if (expiry !== 0 && expiry <= nowMs) bank.pending.delete(keys[i]!, keys[i + 1]!);
      }
      this.#pendingHead++;
    }
    if (this.#pendingHead > 1024 && this.#pendingHead * 2 > batches.length) {
      this.#pendingBatches = batches.slice(this.#pendingHead);
      this.#pendingHead = 0;
    }
  }

  /**
   * For each slot in `slots`, how many leading blocks of `keys` it holds (confirmed or
   * optimistic), written into `depths[slot]` (`depths` has at least `slotCapacity` entries).
   * No state change; allocates only when the cluster grew a bank.
   */
  matchDepths(keys: BlockKeys, slots: readonly number[], depths: Uint32Array): void {
    if (this.#bankMasks.length < this.#banks.length) this.#bankMasks = new Uint32Array(this.#banks.length);
    const bankMasks = this.#bankMasks;
    bankMasks.fill(0);
    for (const slot of slots) {
      const b = Math.floor(slot / slotsPerBank);
      bankMasks[b] = (bankMasks[b] ?? 0) | bitOf(slot);
    }
    for (let b = 0; b < this.#banks.length; b++) {
      if (bankMasks[b] !== 0) this.#matchBank(this.#banks[b]!, b * slotsPerBank, keys, bankMasks[b]!, depths);
    }
  }

  #matchBank(bank: Bank, firstSlot: number, keys: BlockKeys, mask: number, depths: Uint32Array): void {
    const count = numBlocks(keys);
    const { confirmed, pending } = bank;
    let alive = mask >>> 0;
    const checkPending = pending.size > 0;
    let block = 0;
    for (; block < count && alive !== 0; block++) {
      const hi = keys[2 * block]!;
      const lo = keys[2 * block + 1]!;
      let holders = confirmed.get(hi, lo);
      if (checkPending) holders |= pending.get(hi, lo);
      const next = (alive & holders) >>> 0;
      let dropped = (alive & ~next) >>> 0;
      while (dropped !== 0) {
        const bit = 31 - Math.clz32(dropped);
        depths[firstSlot + bit] = block;
        dropped = (dropped & ~(1 << bit)) >>> 0;
      }
      alive = next;
    }
    while (alive !== 0) {
      const bit = 31 - Math.clz32(alive);
      depths[firstSlot + bit] = block;
      alive = (alive & ~(1 << bit)) >>> 0;
    }
  }

  #bankOf(slot: number): Bank {
    return this.#banks[Math.floor(slot / slotsPerBank)]!;
  }
}
