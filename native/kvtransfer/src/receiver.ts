// The receiving side (decode worker): listens, lands pages into its registered pool, and tells
// who waits on a transfer when it completed (committed by the sender) or failed.

import type { KvTransferError } from './errors.ts';
import { fromCode, fromNative, KvTransferClosedError, KvTransferTimeoutError } from './errors.ts';
import { loadAddon, type NativeReceiver, type NativeReceiverEvent } from './native.ts';
import type { MemoryRegion } from './region.ts';
import { type KvSpec, poolBytesOf } from './spec.ts';

export interface KvReceiverOptions {
  /** Interface to bind ('127.0.0.1', '0.0.0.0', ...). */
  host: string;
  /** 0 picks a free port. */
  port: number;
  spec: KvSpec;
  region: MemoryRegion;
  /** A frame's payload must arrive within this once its header did (default 10 s). */
  ioTimeoutMs?: number;
}

export type KvReceiverEvent =
  | { type: 'completed'; transferId: bigint; bytes: number }
  | { type: 'failed'; transferId: bigint; bytes: number; error: KvTransferError }
  | { type: 'rejected'; error: KvTransferError };

export type TransferOutcome =
  | { type: 'completed'; bytes: number }
  | { type: 'failed'; error: KvTransferError };

interface Waiter {
  resolve: (bytes: number) => void;
  reject: (error: KvTransferError) => void;
  timer: NodeJS.Timeout;
}

/** Outcomes nobody waited for yet are kept, oldest dropped first beyond this many. */
const maxUnclaimedOutcomes = 4096;

export class KvReceiver {
  readonly spec: KvSpec;
  readonly port: number;
  private readonly native: NativeReceiver;
  private readonly waiters = new Map<bigint, Waiter>();
  private readonly unclaimed = new Map<bigint, TransferOutcome>();
  private readonly listeners = new Set<(event: KvReceiverEvent) => void>();
  private closed = false;

  constructor(options: KvReceiverOptions) {
    if (options.region.byteLength < poolBytesOf(options.spec)) {
      throw new RangeError(`region of ${options.region.byteLength} bytes is smaller than the pool`);
    }
    this.spec = options.spec;
    const { Receiver } = loadAddon();
    try {
      this.native = new Receiver({
        ...options.region.toNative(),
        host: options.host,
        port: options.port,
        spec: options.spec,
        ioTimeoutMs: options.ioTimeoutMs ?? 10_000,
        onEvent: (event) => this.onNativeEvent(event),
      });
    } catch (error) {
      throw fromNative(error);
    }
    this.port = this.native.port;
  }

  /** Bytes landed so far for a transfer still open (0 once it completed or failed). */
  bytesReceived(transferId: bigint): number {
    return this.closed ? 0 : this.native.bytesReceived(transferId);
  }

  /**
   * Resolves with the transfer's bytes once the sender committed it; rejects with the failure,
   * or KvTransferTimeoutError after timeoutMs. One waiter per transfer.
   */
  waitFor(transferId: bigint, timeoutMs: number): Promise<number> {
    if (this.closed) return Promise.reject(new KvTransferClosedError('receiver is closed'));
    const outcome = this.unclaimed.get(transferId);
    if (outcome !== undefined) {
      this.unclaimed.delete(transferId);
      return outcome.type === 'completed' ? Promise.resolve(outcome.bytes) : Promise.reject(outcome.error);
    }
    if (this.waiters.has(transferId)) {
      return Promise.reject(new TypeError(`transfer ${transferId} already has a waiter`));
    }
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(transferId);
        reject(new KvTransferTimeoutError(`transfer ${transferId} did not complete within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(transferId, { resolve, reject, timer });
    });
  }

  /** Stops waiting for a transfer and forgets its outcome (the request went away). */
  forget(transferId: bigint): void {
    const waiter = this.waiters.get(transferId);
    if (waiter !== undefined) {
      clearTimeout(waiter.timer);
      this.waiters.delete(transferId);
    }
    this.unclaimed.delete(transferId);
  }

  onEvent(listener: (event: KvReceiverEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Idempotent: drops every connection; waiters fail with KvTransferClosedError. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
    for (const [transferId, waiter] of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new KvTransferClosedError(`receiver closed while waiting for transfer ${transferId}`));
    }
    this.waiters.clear();
    this.unclaimed.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private onNativeEvent(native: NativeReceiverEvent): void {
    const event = toEvent(native);
    for (const listener of this.listeners) listener(event);
    if (event.type === 'rejected') return;
    const outcome: TransferOutcome =
      event.type === 'completed'
        ? { type: 'completed', bytes: event.bytes }
        : { type: 'failed', error: event.error };
    const waiter = this.waiters.get(event.transferId);
    if (waiter === undefined) {
      this.unclaimed.set(event.transferId, outcome);
      if (this.unclaimed.size > maxUnclaimedOutcomes) {
        const oldest = this.unclaimed.keys().next();
        if (oldest.done !== true) this.unclaimed.delete(oldest.value);
      }
      return;
    }
    clearTimeout(waiter.timer);
    this.waiters.delete(event.transferId);
    if (outcome.type === 'completed') waiter.resolve(outcome.bytes);
    else waiter.reject(outcome.error);
  }
}

function toEvent(native: NativeReceiverEvent): KvReceiverEvent {
  if (native.type === 'completed')
    return { type: 'completed', transferId: native.transferId, bytes: native.bytes };
  const error = fromCode(native.code ?? 'io', native.message);
  if (native.type === 'rejected') return { type: 'rejected', error };
  return { type: 'failed', transferId: native.transferId, bytes: native.bytes, error };
}
