// The whole native surface of tandem_executor.node, declared once. Names and field order
// follow cpp/binding/ (executor_wrap.cc, marshal.cc, addon.cc).

export interface NativeOpenOptions {
  modelDir: string;
  device: string; // 'cpu' | 'cuda:N'
  dtype: string; // '' picks the device default
  pageSize: number;
  numPages: number; // 0: derive from kvCacheBytes / kvCacheFraction
  kvCacheBytes: number; // 0: default
  kvCacheFraction: number;
  numThreads: number; // 0: all cores
  ropeFrequencyRounding: 'none' | 'stored-dtype';
}

export interface NativeModelInfo {
  architecture: string;
  modelType: string;
  numLayers: number;
  hiddenSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  storedDtype: string;
  computeDtype: string;
  tieWordEmbeddings: boolean;
  device: string;
  kvDtype: string;
  numPages: number;
  pageSize: number;
  pageBytes: number;
  totalBytes: number;
  baseAddress: bigint;
}

export interface NativeSampling {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
  frequencyPenalty: number;
  presencePenalty: number;
  numTopLogprobs: number;
  logitBiasIds: Int32Array | null;
  logitBiasValues: Float32Array | null;
  seed: number | null;
  allowedTokenIds: Int32Array | null;
  allowedTokenMask: Uint32Array | null;
}

export interface NativeSequenceInput {
  tokenIds: Int32Array;
  startPos: number;
  pageTable: Int32Array;
  sampleIndices: Int32Array;
  sampling: NativeSampling;
  promptTokenIds: Int32Array | null;
  outputTokenIds: Int32Array | null;
  targetIds: Int32Array | null;
  returnLogits: boolean;
  returnProbs: boolean;
}

export interface NativeSampleOutput {
  index: number;
  tokenId: number;
  logprob: number;
  topIds: Int32Array; // [numTopLogprobs], best first
  topLogprobs: Float32Array; // [numTopLogprobs]
  logits: Float32Array | null;
  probs: Float32Array | null;
}

export interface NativeSequenceOutput {
  samples: NativeSampleOutput[];
  targetLogprobs: Float32Array | null;
}

export interface NativeExecutorHandle {
  open(options: NativeOpenOptions): Promise<NativeModelInfo>;
  /** onLayerDone runs on the JS thread, possibly after the promise settles (calls are queued). */
  forward(
    batch: NativeSequenceInput[],
    onLayerDone?: (layer: number) => void,
  ): Promise<NativeSequenceOutput[]>;
  /** The last pass's device time and the device's idle gap before it, ms (-1: not measured). */
  stepTiming(): { deviceMs: number; gapMs: number };
  close(): void;
}

export interface NativeBandwidthOptions {
  bytesPerArray?: number;
  repeats?: number;
  numThreads?: number;
}

export interface NativeAddon {
  NativeExecutor: new () => NativeExecutorHandle;
  /** STREAM-like triad over all threads; resolves bytes per second (best of repeats). */
  measureMemoryBandwidth(options?: NativeBandwidthOptions): Promise<number>;
  withCuda: boolean;
}
