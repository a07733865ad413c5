// The addon's whole native surface, declared once (same names and field order as cpp/binding/).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { KvAddonMissingError } from './errors.ts';

export interface NativeSpec {
  model: string;
  dtype: string;
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  pageSize: number;
  numPages: number;
}

/** Memory a side exposes: an ArrayBuffer, or a raw host address (the executor's KV pool). */
export type NativeRegionOptions =
  | { regionBuffer: ArrayBuffer }
  | { regionBuffer: null; regionAddress: bigint; regionBytes: bigint };

export interface NativeReceiverEvent {
  type: 'completed' | 'failed' | 'rejected' | 'released';
  transferId: bigint;
  bytes: number;
  code: string | null;
  message: string;
}

export interface NativeReceiver {
  readonly port: number;
  bytesReceived(transferId: bigint): number;
  expect(transferId: bigint): void;
  /** True when no frame of the transfer is landing; else a 'released' event follows. */
  release(transferId: bigint): boolean;
  close(): void;
}

export interface NativeSender {
  connect(timeoutMs: number): Promise<{ remoteNumPages: number; remoteRegionBytes: bigint }>;
  /** ranges: [srcOffset, dstOffset, length] triples. Resolves with the bytes sent. */
  send(transferId: bigint, ranges: BigUint64Array, commit: boolean, timeoutMs: number): Promise<number>;
  abort(transferId: bigint): void;
  close(): void;
}

interface Addon {
  Receiver: new (
    options: NativeRegionOptions & {
      host: string;
      port: number;
      spec: NativeSpec;
      ioTimeoutMs: number;
      onEvent: (event: NativeReceiverEvent) => void;
    },
  ) => NativeReceiver;
  Sender: new (
    options: NativeRegionOptions & { host: string; port: number; numStreams: number; spec: NativeSpec },
  ) => NativeSender;
  arrayBufferAddress(buffer: ArrayBuffer): bigint;
}

const addonPath = fileURLToPath(new URL('../build/Release/kvtransfer.node', import.meta.url));
let addon: Addon | null = null;

export function loadAddon(): Addon {
  if (addon !== null) return addon;
  if (!existsSync(addonPath)) {
    throw new KvAddonMissingError(
      `kvtransfer addon not built (${addonPath} is missing): run \`pnpm -s build:native\` (needs g++, cmake)`,
    );
  }
  addon = createRequire(import.meta.url)(addonPath) as Addon;
  return addon;
}
