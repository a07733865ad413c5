// Memory registered with the engine: the executor's KV pool (host memory, or one cudaMalloc'd
// allocation on a GPU) or, in tests and benches, an ArrayBuffer. The region must outlive every
// sender / receiver that uses it. A GPU region is moved by the CUDA build of the addon.
import { type Addon, loadAddon, type NativeRegionOptions } from './native.ts';
import type { KvPoolLayout } from './spec.ts';

export class MemoryRegion {
  readonly byteLength: number;
  readonly buffer: ArrayBuffer | null;
  readonly address: bigint;
  /** CUDA ordinal of a device pool; null for host memory. */
  readonly device: number | null;

  private constructor(
    buffer: ArrayBuffer | null,
    address: bigint,
    byteLength: number,
    device: number | null,
  ) {
    this.buffer = buffer;
    this.address = address;
    this.byteLength = byteLength;
    this.device = device;
  }

  static fromArrayBuffer(buffer: ArrayBuffer): MemoryRegion {
    return new MemoryRegion(buffer, loadAddon().arrayBufferAddress(buffer), buffer.byteLength, null);
  }

  /** Host memory owned elsewhere (the CPU executor's pool). */
  static fromAddress(address: bigint, byteLength: number): MemoryRegion {
    return new MemoryRegion(null, address, byteLength, null);
  }

  /**
   * A pool on GPU `device`: `address` is a device pointer into one cudaMalloc'd allocation (the
   * CUDA executor's pool; cuda_ipc exports that allocation to other processes).
   */
  static fromDevicePointer(address: bigint, byteLength: number, device: number): MemoryRegion {
    if (!Number.isInteger(device) || device < 0)
      throw new RangeError(`device must be a CUDA ordinal, not ${device}`);
    return new MemoryRegion(null, address, byteLength, device);
  }

  /** The executor's pool: 'cpu' or 'cuda:N' (baseAddress a device pointer, totalBytes the pool). */
  static fromKvLayout(layout: KvPoolLayout): MemoryRegion {
    if (layout.device === 'cpu') return MemoryRegion.fromAddress(layout.baseAddress, layout.totalBytes);
    const match = /^cuda:(\d+)$/.exec(layout.device);
    if (match === null)
      throw new TypeError(`unknown pool device '${layout.device}' (expected 'cpu' or 'cuda:N')`);
    return MemoryRegion.fromDevicePointer(layout.baseAddress, layout.totalBytes, Number(match[1]));
  }

  /** 'cpu' or 'cuda:N', as the executor names devices. */
  get deviceName(): string {
    return this.device === null ? 'cpu' : `cuda:${this.device}`;
  }

  /** The addon that can move this region (the CUDA build for a GPU pool). */
  addon(): Addon {
    if (this.device === null) return loadAddon('cpu');
    return loadAddon('cuda', `this pool is on ${this.deviceName}: `);
  }

  toNative(): NativeRegionOptions {
    if (this.buffer !== null) return { regionBuffer: this.buffer };
    return {
      regionBuffer: null,
      regionAddress: this.address,
      regionBytes: BigInt(this.byteLength),
      regionDevice: this.device ?? -1,
    };
  }
}
