// The receiving side (decode worker): listens, lands pages into its registered pool for the
// transfers it expects, and tells who waits on a transfer when it completed (committed by the
// sender) or failed, and over which transport. Writes of a transfer it does not expect (never
// announced, or released) never touch the pool: TCP / NCCL data is dropped unread, one-sided
// writers (cuda_ipc, rdma) get no grant or lose it, so pages given up are never written late.

import type { TandemError } from '@tandem/common';
import {
  fromCode,
  fromNative,
  KvTransferAbortedError,
  KvTransferClosedError,
  KvTransferTimeoutError,
} from './errors.ts';
import type { KvReceiverCapabilities, KvTransport, NativeReceiver, NativeReceiverEvent } from './native.ts';
import type { MemoryRegion } from './region.ts';
import { type KvSpec, poolBytesOf } from './spec.ts';

export interface KvReceiverOptions {
  /** Interface to bind ('127.0.0.1', '0.0.0.0', ...). */
  host: string;
  /** 0 picks a free port. */
  port: number;
  spec: KvSpec;
  region: MemoryRegion;
  /**
   * A frame's payload must arrive within this once its header did; an NCCL announcement's bytes
   * within this once announced; a one-sided writer must confirm a release within it (default 10 s).
   */
  ioTimeoutMs?: number;
}

/** `transport`: the transport of the connection that carried (or lost) the transfer's bytes. */
export type KvReceiverEvent =
  | { type: 'completed'; transferId: bigint; bytes: number; transport: KvTransport }
  | { type: 'failed'; transferId: bigint; bytes: number; error: TandemError; transport: KvTransport }
  | { type: 'rejected'; error: TandemError }
  | { type: 'released'; transferId: bigint };

interface Waiter {
  resolve: (bytes: number) => void;
  reject: (error: TandemError) => void;
  timer: NodeJS.Timeout;
}

export class KvReceiver {
  readonly spec: KvSpec;
  readonly port: number;
  private readonly native: NativeReceiver;
  private readonly waiters = new Map<bigint, Waiter>();
  private readonly releasing = new Map<bigint, () => void>();
  private readonly listeners = new Set<(event: KvReceiverEvent) => void>();
  private closed = false;

  constructor(options: KvReceiverOptions) {
    if (options.region.byteLength < poolBytesOf(options.spec)) {
      throw new RangeError(`region of ${options.region.byteLength} bytes is smaller than the pool`);
    }
    this.spec = options.spec;
    const { Receiver } = options.region.addon();
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

  /** What this receiver offers senders: cuda_ipc, nccl, rdma (tcp always), or why not. */
  capabilities(): KvReceiverCapabilities {
    return this.native.capabilities();
  }

  /** Bytes landed so far for a transfer still open (0 once it completed or failed). */
  bytesReceived(transferId: bigint): number {
    return this.closed ? 0 : this.native.bytesReceived(transferId);
  }

  /** Transfers expected and not yet committed, failed or released, and the bytes they have landed. */
  progress(): { numTransfers: number; numBytes: number } {
    let numBytes = 0;
    for (const transferId of this.waiters.keys()) numBytes += this.bytesReceived(transferId);
    return { numTransfers: this.waiters.size, numBytes };
  }

  /**
   * Announces a transfer (call before the sender starts) and resolves with its bytes once the
   * sender committed it; rejects with its failure, or KvTransferTimeoutError after timeoutMs (the
   * transfer is then released: later frames are dropped). One waiter per transfer.
   */
  expect(transferId: bigint, timeoutMs: number): Promise<number> {
    if (this.closed) return Promise.reject(new KvTransferClosedError('receiver is closed'));
    if (this.waiters.has(transferId)) {
      return Promise.reject(new TypeError(`transfer ${transferId} is already expected`));
    }
    this.native.expect(transferId);
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(transferId);
        this.native.release(transferId);
        reject(new KvTransferTimeoutError(`transfer ${transferId} did not complete within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(transferId, { resolve, reject, timer });
    });
  }

  /**
   * Gives a transfer up: its waiter fails with KvTransferAbortedError, later frames are dropped,
   * and the promise resolves once no frame of it is landing any more (then its pages may be reused).
   */
  release(transferId: bigint): Promise<void> {
    const waiter = this.waiters.get(transferId);
    if (waiter !== undefined) {
      clearTimeout(waiter.timer);
      this.waiters.delete(transferId);
      waiter.reject(new KvTransferAbortedError(`transfer ${transferId} was released by the receiver`));
    }
    if (this.closed || this.native.release(transferId)) return Promise.resolve();
    return new Promise<void>((resolve) => this.releasing.set(transferId, resolve));
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
    for (const resolve of this.releasing.values()) resolve();
    this.releasing.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private onNativeEvent(native: NativeReceiverEvent): void {
    const event = toEvent(native);
    for (const listener of this.listeners) listener(event);
    if (event.type === 'rejected') return;
    if (event.type === 'released') {
      this.releasing.get(event.transferId)?.();
      this.releasing.delete(event.transferId);
      return;
    }
    const waiter = this.waiters.get(event.transferId);
    if (waiter === undefined) return;
    clearTimeout(waiter.timer);
    this.waiters.delete(event.transferId);
    if (event.type === 'completed') waiter.resolve(event.bytes);
    else waiter.reject(event.error);
  }
}

function toEvent(native: NativeReceiverEvent): KvReceiverEvent {
  if (native.type === 'completed')
    return {
      type: 'completed',
      transferId: native.transferId,
      bytes: native.bytes,
      transport: native.transport,
    };
  if (native.type === 'released') return { type: 'released', transferId: native.transferId };
  const error = fromCode(native.code ?? 'kv_io', native.message);
  if (native.type === 'rejected') return { type: 'rejected', error };
  return {
    type: 'failed',
    transferId: native.transferId,
    bytes: native.bytes,
    error,
    transport: native.transport,
  };
}
