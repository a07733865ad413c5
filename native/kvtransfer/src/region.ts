// Memory registered with the engine: the executor's KV pool (a raw host address) or, in tests and
// benches, an ArrayBuffer. The region must outlive every sender / receiver that uses it.
import { loadAddon, type NativeRegionOptions } from './native.ts';
import type { KvPoolLayout } from './spec.ts';

export class MemoryRegion {
  readonly byteLength: number;
  readonly buffer: ArrayBuffer | null;
  readonly address: bigint;

  private constructor(buffer: ArrayBuffer | null, address: bigint, byteLength: number) {
    this.buffer = buffer;
    this.address = address;
    this.byteLength = byteLength;
  }

  static fromArrayBuffer(buffer: ArrayBuffer): MemoryRegion {
    return new MemoryRegion(buffer, loadAddon().arrayBufferAddress(buffer), buffer.byteLength);
  }

  /** Host memory owned elsewhere (the CPU executor's pool). */
  static fromAddress(address: bigint, byteLength: number): MemoryRegion {
    return new MemoryRegion(null, address, byteLength);
  }

  static fromKvLayout(layout: KvPoolLayout): MemoryRegion {
    if (layout.device !== 'cpu') {
      throw new TypeError(`the TCP transport reads host memory; the pool is on ${layout.device}`);
    }
    return MemoryRegion.fromAddress(layout.baseAddress, layout.totalBytes);
  }

  toNative(): NativeRegionOptions {
    if (this.buffer !== null) return { regionBuffer: this.buffer };
    return { regionBuffer: null, regionAddress: this.address, regionBytes: BigInt(this.byteLength) };
  }
}
