// The sending side (prefill worker): connects to one receiver over the transport chosen for the
// pair (or forced), and pushes page copies (per layer or all layers) or raw byte ranges, each
// send confirmed by the receiver. `transport` says which transport carries the bytes.
import { randomBytes } from 'node:crypto';
import { fromNative, KvTransferClosedError } from './errors.ts';
import type { KvTransport, KvTransportPreference, NativeSender } from './native.ts';
import type { MemoryRegion } from './region.ts';
import { type KvSpec, pageRanges, poolBytesOf } from './spec.ts';

export interface KvSenderOptions {
  host: string;
  port: number;
  spec: KvSpec;
  region: MemoryRegion;
  /** Parallel TCP streams (default 2); the other transports use one control connection. */
  numStreams?: number;
  /** Connect, handshake and transport setup deadline (default 5 s; NCCL's setup may need more). */
  connectTimeoutMs?: number;
  /**
   * 'auto' (default): the best both sides support (same host, GPU pools: cuda_ipc; GPU pools
   * elsewhere: rdma, else nccl, else tcp with pinned staging; host pools: tcp). Any other value
   * forces that transport: KvTransportUnavailableError says why it cannot be used.
   */
  transport?: KvTransportPreference;
}

export interface PageCopy {
  transferId: bigint;
  /** Local pages, and the receiver's pages they go to (same length). */
  srcPages: ArrayLike<number>;
  dstPages: ArrayLike<number>;
  /** Layers to copy; null copies every layer. */
  layers: readonly number[] | null;
  /** Last send of this transfer: the receiver checks the total and reports completion. */
  commit: boolean;
  timeoutMs: number;
  /**
   * A GPU pool: a cudaEvent_t (as a bigint) recorded after the executor wrote these pages; the
   * copies wait for that recording on the device (captured at this call, so the event may be
   * recorded again afterwards). Absent: the pages are ready now.
   */
  afterEvent?: bigint;
}

export interface RangeCopy {
  transferId: bigint;
  /** [srcOffset, dstOffset, length] triples. */
  ranges: BigUint64Array;
  commit: boolean;
  timeoutMs: number;
  afterEvent?: bigint;
}

/** A random nonzero 64-bit transfer id. */
export function newTransferId(): bigint {
  const id = randomBytes(8).readBigUInt64LE(0);
  return id === 0n ? 1n : id;
}

export class KvSender {
  readonly spec: KvSpec;
  /** The receiver's pool size, learned in the handshake. */
  readonly remoteNumPages: number;
  readonly remoteRegionBytes: bigint;
  /** The transport that carries this pair's bytes. */
  readonly transport: KvTransport;
  /** Why: the rule that chose it, and the better transports that were not possible. */
  readonly transportReason: string;
  private readonly native: NativeSender;
  private readonly allLayers: number[];
  private closed = false;

  private constructor(
    native: NativeSender,
    spec: KvSpec,
    info: {
      remoteNumPages: number;
      remoteRegionBytes: bigint;
      transport: KvTransport;
      transportReason: string;
    },
  ) {
    this.native = native;
    this.spec = spec;
    this.remoteNumPages = info.remoteNumPages;
    this.remoteRegionBytes = info.remoteRegionBytes;
    this.transport = info.transport;
    this.transportReason = info.transportReason;
    this.allLayers = Array.from({ length: spec.numLayers }, (_, i) => i);
  }

  /**
   * Connects, runs the layout handshake (KvHandshakeMismatchError on mismatch), chooses the
   * transport with the receiver's capabilities and sets it up.
   */
  static async connect(options: KvSenderOptions): Promise<KvSender> {
    if (options.region.byteLength < poolBytesOf(options.spec)) {
      throw new RangeError(`region of ${options.region.byteLength} bytes is smaller than the pool`);
    }
    const { Sender } = options.region.addon();
    const native = new Sender({
      ...options.region.toNative(),
      host: options.host,
      port: options.port,
      numStreams: options.numStreams ?? 2,
      spec: options.spec,
      transport: options.transport ?? 'auto',
    });
    try {
      const info = await native.connect(options.connectTimeoutMs ?? 5000);
      return new KvSender(native, options.spec, info);
    } catch (error) {
      native.close();
      throw fromNative(error);
    }
  }

  /** Copies K and V of the given layers for each page pair. Resolves with the bytes moved. */
  sendPages(copy: PageCopy): Promise<number> {
    if (copy.srcPages.length !== copy.dstPages.length) {
      return Promise.reject(new RangeError('srcPages and dstPages differ in length'));
    }
    const ranges = pageRanges(
      this.spec,
      this.remoteNumPages,
      copy.srcPages,
      copy.dstPages,
      copy.layers ?? this.allLayers,
    );
    return this.sendRanges({
      transferId: copy.transferId,
      ranges,
      commit: copy.commit,
      timeoutMs: copy.timeoutMs,
      ...(copy.afterEvent === undefined ? {} : { afterEvent: copy.afterEvent }),
    });
  }

  async sendRanges(copy: RangeCopy): Promise<number> {
    if (this.closed) throw new KvTransferClosedError('sender is closed');
    try {
      return await this.native.send(
        copy.transferId,
        copy.ranges,
        copy.commit,
        copy.timeoutMs,
        copy.afterEvent ?? 0n,
      );
    } catch (error) {
      throw fromNative(error);
    }
  }

  /**
   * cuda_ipc / rdma: asks now for the receiver's grant to write this transfer (call it when the
   * transfer id is known, before its pages are computed), so the first send does not wait a
   * control round trip for it. Never waits; a no-op on tcp and nccl.
   */
  prepare(transferId: bigint): void {
    if (!this.closed) this.native.prepare(transferId);
  }

  /** Tells the receiver to drop the transfer (its waiter fails with KvTransferAbortedError). */
  abort(transferId: bigint): void {
    if (!this.closed) this.native.abort(transferId);
  }

  /** Idempotent; sends in flight fail with KvTransferClosedError. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
