// Writing (and reading the header of) safetensors files, for tests that build broken
// checkpoints and for the bench's random checkpoints. The executor itself reads them natively.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

export type SafetensorsDType = 'F32' | 'BF16' | 'F16';

export interface TensorEntry {
  dtype: SafetensorsDType;
  shape: number[];
  data_offsets: [number, number];
}

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Raw little-endian bytes, or a function filling them in chunks (large tensors). */
  bytes: Uint8Array | ((write: (chunk: Uint8Array) => void) => void);
  numBytes: number;
}

const elementBytes: Record<SafetensorsDType, number> = { F32: 4, BF16: 2, F16: 2 };

export function float32Tensor(name: string, shape: number[], values: Float32Array): TensorToWrite {
  return {
    name,
    dtype: 'F32',
    shape,
    bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    numBytes: values.byteLength,
  };
}

/** Writes tensors in order; the header is padded with spaces to 8 bytes, as the format asks. */
export function writeSafetensors(path: string, tensors: TensorToWrite[]): void {
  const header: Record<string, TensorEntry | Record<string, string>> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    const expected = t.shape.reduce((a, b) => a * b, 1) * elementBytes[t.dtype];
    if (expected !== t.numBytes)
      throw new RangeError(`${t.name}: shape needs ${expected} bytes, got ${t.numBytes}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.numBytes] };
    offset += t.numBytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, prefix);
    writeSync(fd, headerBytes);
    for (const t of tensors) {
      if (t.bytes instanceof Uint8Array) writeSync(fd, t.bytes);
      else t.bytes((chunk) => writeSync(fd, chunk));
    }
  } finally {
    closeSync(fd);
  }
}

/** The header of a safetensors file and where its data section starts. */
export function readSafetensorsHeader(path: string): {
  tensors: Record<string, TensorEntry>;
  dataStart: number;
} {
  const fd = openSync(path, 'r');
  try {
    const prefix = Buffer.alloc(8);
    readSync(fd, prefix, 0, 8, 0);
    const headerLength = Number(prefix.readBigUInt64LE());
    const headerBytes = Buffer.alloc(headerLength);
    readSync(fd, headerBytes, 0, headerLength, 8);
    const parsed = JSON.parse(headerBytes.toString('utf8')) as Record<string, TensorEntry>;
    delete parsed.__metadata__;
    return { tensors: parsed, dataStart: 8 + headerLength };
  } finally {
    closeSync(fd);
  }
}
