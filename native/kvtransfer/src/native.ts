// The addon's whole native surface, declared once (same names and field order as cpp/binding/),
// and its loader. Two builds of one source: build/Release/kvtransfer.node (CPU: host pools) and
// build-cuda/Release/kvtransfer_cuda.node (CUDA: GPU pools too), loaded when a region is on a GPU.
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

/** The transports; 'auto' (connect only) picks the best both sides support. */
export type KvTransport = 'tcp' | 'cuda_ipc' | 'nccl' | 'rdma';
export type KvTransportPreference = KvTransport | 'auto';

/** Memory a side exposes: an ArrayBuffer, or a raw address (host: regionDevice -1; else a CUDA ordinal). */
export type NativeRegionOptions =
  | { regionBuffer: ArrayBuffer }
  | { regionBuffer: null; regionAddress: bigint; regionBytes: bigint; regionDevice: number };

export interface NativeReceiverEvent {
  type: 'completed' | 'failed' | 'rejected' | 'released';
  transferId: bigint;
  bytes: number;
  code: string | null;
  message: string;
  transport: KvTransport;
}

/** One transport a receiver offers, or why not. */
export interface KvOffer {
  ok: boolean;
  reason: string | null;
}

export interface KvReceiverCapabilities {
  hostId: string;
  /** CUDA ordinal of the pool, null for host memory. */
  device: number | null;
  cudaIpc: KvOffer;
  nccl: KvOffer;
  rdma: KvOffer;
}

export interface NativeReceiver {
  readonly port: number;
  capabilities(): KvReceiverCapabilities;
  bytesReceived(transferId: bigint): number;
  expect(transferId: bigint): void;
  /** True when no write of the transfer is landing; else a 'released' event follows. */
  release(transferId: bigint): boolean;
  close(): void;
}

export interface NativeConnected {
  remoteNumPages: number;
  remoteRegionBytes: bigint;
  transport: KvTransport;
  transportReason: string;
}

export interface NativeSender {
  connect(timeoutMs: number): Promise<NativeConnected>;
  /** ranges: [srcOffset, dstOffset, length] triples; afterEvent: a cudaEvent_t or 0n. Resolves with the bytes sent. */
  send(
    transferId: bigint,
    ranges: BigUint64Array,
    commit: boolean,
    timeoutMs: number,
    afterEvent: bigint,
  ): Promise<number>;
  prepare(transferId: bigint): void;
  abort(transferId: bigint): void;
  close(): void;
}

/** A side as the transport rule sees it (choice.h's EndpointView). */
export interface KvEndpointView {
  hostId: string;
  pid: number;
  devicePool: boolean;
  cudaIpc: KvOffer;
  nccl: KvOffer;
  rdma: KvOffer;
}

export interface KvTransportCandidate {
  transport: KvTransport;
  reason: string;
}

export interface KvBuildInfo {
  cuda: boolean;
  cudaDevices: number;
  rdmaBuilt: boolean;
  rdma: KvOffer;
  nccl: KvOffer;
  hostId: string;
}

export interface Addon {
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
    options: NativeRegionOptions & {
      host: string;
      port: number;
      numStreams: number;
      spec: NativeSpec;
      transport: KvTransportPreference;
    },
  ) => NativeSender;
  arrayBufferAddress(buffer: ArrayBuffer): bigint;
  chooseTransport(
    sender: KvEndpointView,
    receiver: KvEndpointView,
    preference: KvTransportPreference,
  ): { usable: KvTransportCandidate[]; rejected: KvTransportCandidate[] };
  buildInfo(): KvBuildInfo;
}

export type AddonKind = 'cpu' | 'cuda';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const cache = new Map<AddonKind, Addon>();

/** TANDEM_KVTRANSFER_ADDON (CPU) / TANDEM_KVTRANSFER_CUDA_ADDON (CUDA) name a build elsewhere. */
export function addonPath(kind: AddonKind): string {
  const override = process.env[kind === 'cpu' ? 'TANDEM_KVTRANSFER_ADDON' : 'TANDEM_KVTRANSFER_CUDA_ADDON'];
  if (override !== undefined && override !== '') return override;
  return kind === 'cpu'
    ? `${packageDir}build/Release/kvtransfer.node`
    : `${packageDir}build-cuda/Release/kvtransfer_cuda.node`;
}

/** The CPU build moves host pools; a pool on a GPU needs the CUDA build (`why` names the pool). */
export function loadAddon(kind: AddonKind = 'cpu', why = ''): Addon {
  const cached = cache.get(kind);
  if (cached !== undefined) return cached;
  const path = addonPath(kind);
  if (!existsSync(path)) {
    throw new KvAddonMissingError(
      kind === 'cpu'
        ? `kvtransfer addon not built (${path} is missing): run \`pnpm -s build:native\` (needs g++, cmake)`
        : `${why}kvtransfer's CUDA build is missing (${path}): build it with ` +
            '`cd native/kvtransfer && pnpm -s build:cuda` (needs nvcc)',
    );
  }
  try {
    const addon = require(path) as Addon;
    cache.set(kind, addon);
    return addon;
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new KvAddonMissingError(`cannot load ${path}: ${detail}; rebuild it`, { cause: error });
  }
}
