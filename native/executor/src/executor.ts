// The executor handle: open a checkpoint, run batched forward passes, close. Forward calls are
// serialised per executor (the native side owns one KV pool); each resolves off the JS thread.
import { AddonMissingError, DeviceError, ExecutorClosedError, fromNative } from './errors.ts';
import { type AddonKind, isAddonBuilt, loadAddon } from './loader.ts';
import type {
  NativeExecutorHandle,
  NativeModelInfo,
  NativeSequenceInput,
  NativeSequenceOutput,
} from './native.ts';
import {
  type ComputeDType,
  type Device,
  type ExecutorOptions,
  type ExecutorStats,
  type ForwardOptions,
  type KvLayout,
  largeBatchSequences,
  type ModelInfo,
  type SamplingParams,
  type SequenceInput,
  type SequenceOutput,
} from './types.ts';

/** Greedy, every filter off, no logprobs. */
export function defaultSampling(): SamplingParams {
  return {
    temperature: 0,
    topK: 0,
    topP: 1,
    minP: 0,
    repetitionPenalty: 1,
    frequencyPenalty: 0,
    presencePenalty: 0,
    logitBias: null,
    seed: null,
    numTopLogprobs: 0,
    allowedTokenIds: null,
    allowedTokenMask: null,
  };
}

function toNativeSequence(seq: SequenceInput): NativeSequenceInput {
  const s = seq.sampling;
  let logitBiasIds: Int32Array | null = null;
  let logitBiasValues: Float32Array | null = null;
  if (s.logitBias !== null && s.logitBias.size > 0) {
    logitBiasIds = new Int32Array(s.logitBias.size);
    logitBiasValues = new Float32Array(s.logitBias.size);
    let i = 0;
    for (const [id, bias] of s.logitBias) {
      logitBiasIds[i] = id;
      logitBiasValues[i] = bias;
      i++;
    }
  }
  return {
    tokenIds: seq.tokenIds,
    startPos: seq.startPos,
    pageTable: seq.pageTable,
    sampleIndices: seq.sampleIndices,
    sampling: {
      temperature: s.temperature,
      topK: s.topK,
      topP: s.topP,
      minP: s.minP,
      repetitionPenalty: s.repetitionPenalty,
      frequencyPenalty: s.frequencyPenalty,
      presencePenalty: s.presencePenalty,
      numTopLogprobs: s.numTopLogprobs,
      logitBiasIds,
      logitBiasValues,
      seed: s.seed,
      allowedTokenIds: s.allowedTokenIds,
      allowedTokenMask: s.allowedTokenMask,
    },
    promptTokenIds: seq.promptTokenIds,
    outputTokenIds: seq.outputTokenIds,
    targetIds: seq.targetIds,
    returnLogits: seq.returnLogits,
    returnProbs: seq.returnProbs,
  };
}

function fromNativeOutput(out: NativeSequenceOutput): SequenceOutput {
  return {
    samples: out.samples.map((s) => {
      const topLogprobs = [];
      for (let r = 0; r < s.topIds.length; r++) {
        topLogprobs.push({ tokenId: s.topIds[r] ?? 0, logprob: s.topLogprobs[r] ?? 0 });
      }
      return {
        index: s.index,
        tokenId: s.tokenId,
        logprob: s.logprob,
        topLogprobs,
        logits: s.logits,
        probs: s.probs,
      };
    }),
    targetLogprobs: out.targetLogprobs,
  };
}

function toModelInfo(n: NativeModelInfo): ModelInfo {
  return {
    architecture: n.architecture,
    modelType: n.modelType,
    numLayers: n.numLayers,
    hiddenSize: n.hiddenSize,
    numHeads: n.numHeads,
    numKvHeads: n.numKvHeads,
    headDim: n.headDim,
    intermediateSize: n.intermediateSize,
    vocabSize: n.vocabSize,
    maxPositionEmbeddings: n.maxPositionEmbeddings,
    bosTokenId: n.bosTokenId,
    eosTokenIds: n.eosTokenIds,
    storedDtype: n.storedDtype as ComputeDType,
    computeDtype: n.computeDtype as ComputeDType,
    tieWordEmbeddings: n.tieWordEmbeddings,
  };
}

function toKvLayout(n: NativeModelInfo): KvLayout {
  return {
    device: n.device as Device,
    dtype: n.kvDtype as ComputeDType,
    numPages: n.numPages,
    pageSize: n.pageSize,
    numLayers: n.numLayers,
    numKvHeads: n.numKvHeads,
    headDim: n.headDim,
    pageBytes: n.pageBytes,
    totalBytes: n.totalBytes,
    baseAddress: n.baseAddress,
  };
}

async function openHandle(kind: AddonKind, device: string, options: ExecutorOptions) {
  const addon = loadAddon(kind);
  const handle = new addon.NativeExecutor();
  try {
    const info = await handle.open({
      modelDir: options.modelDir,
      device,
      dtype: options.dtype ?? '',
      pageSize: options.pageSize ?? 16,
      numPages: options.numPages ?? 0,
      kvCacheBytes: options.kvCacheBytes ?? 0,
      kvCacheFraction: options.kvCacheFraction ?? 0.85,
      numThreads: options.numThreads ?? 0,
      ropeFrequencyRounding: options.ropeFrequencyRounding ?? 'none',
    });
    return { handle, info };
  } catch (err) {
    throw fromNative(err);
  }
}

export class Executor {
  readonly info: ModelInfo;
  readonly kvLayout: KvLayout;
  #handle: NativeExecutorHandle | null;
  #queue: Promise<unknown> = Promise.resolve();
  #stats: ExecutorStats = {
    forwardTokens: 0,
    forwardCalls: 0,
    layerReportsLive: 0,
    deviceBusyMs: 0,
    deviceIdleMs: 0,
    deviceBusyMsLarge: 0,
    deviceIdleMsLarge: 0,
  };

  private constructor(handle: NativeExecutorHandle, info: NativeModelInfo) {
    this.#handle = handle;
    this.info = toModelInfo(info);
    this.kvLayout = toKvLayout(info);
  }

  /** Loads config and weights and allocates the KV pool, off the JS thread. */
  static async open(options: ExecutorOptions): Promise<Executor> {
    const device = options.device ?? 'cpu';
    if (device === 'auto') {
      if (isAddonBuilt('cuda')) {
        try {
          const { handle, info } = await openHandle('cuda', 'cuda:0', options);
          return new Executor(handle, info);
        } catch (err) {
          if (!(err instanceof DeviceError || err instanceof AddonMissingError)) throw err;
        }
      }
      const { handle, info } = await openHandle('cpu', 'cpu', options);
      return new Executor(handle, info);
    }
    const kind: AddonKind = device === 'cpu' ? 'cpu' : 'cuda';
    const { handle, info } = await openHandle(kind, device, options);
    return new Executor(handle, info);
  }

  get stats(): ExecutorStats {
    return { ...this.#stats };
  }

  get closed(): boolean {
    return this.#handle === null;
  }

  /**
   * One batched forward pass. Rejects with InvalidBatchError (nothing computed) when a sequence
   * is malformed: page ids out of range, page table too short, token ids outside the vocabulary,
   * positions past maxPositionEmbeddings.
   */
  forward(batch: SequenceInput[], options: ForwardOptions = {}): Promise<SequenceOutput[]> {
    const onLayerDone = options.onLayerDone;
    const run = async (): Promise<SequenceOutput[]> => {
      const handle = this.#handle;
      if (handle === null) throw new ExecutorClosedError();
      // Native layer calls may arrive late (after the pass resolved): report each layer once, in
      // order, and every layer before returning.
      let numReported = 0;
      let passDone = false;
      let hookError: unknown = null;
      const reportUpTo = (layer: number): void => {
        for (; numReported <= layer; numReported++) {
          try {
            onLayerDone?.(numReported);
          } catch (error) {
            hookError ??= error;
          }
        }
      };
      let outputs: NativeSequenceOutput[];
      try {
        outputs = await handle.forward(
          batch.map(toNativeSequence),
          onLayerDone === undefined
            ? undefined
            : (layer) => {
                if (!passDone && layer >= numReported)
                  this.#stats.layerReportsLive += layer + 1 - numReported;
                reportUpTo(layer);
              },
        );
      } catch (err) {
        throw fromNative(err);
      } finally {
        passDone = true;
      }
      if (onLayerDone !== undefined) reportUpTo(this.info.numLayers - 1);
      if (hookError !== null) throw hookError;
      this.#stats.forwardCalls++;
      for (const seq of batch) this.#stats.forwardTokens += seq.tokenIds.length;
      this.#recordTiming(handle.stepTiming(), batch.length);
      return outputs.map(fromNativeOutput);
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  #recordTiming(timing: { deviceMs: number; gapMs: number }, numSequences: number): void {
    if (timing.deviceMs < 0) return;
    const large = numSequences >= largeBatchSequences;
    this.#stats.deviceBusyMs += timing.deviceMs;
    if (large) this.#stats.deviceBusyMsLarge += timing.deviceMs;
    if (timing.gapMs >= 0) {
      this.#stats.deviceIdleMs += timing.gapMs;
      if (large) this.#stats.deviceIdleMsLarge += timing.gapMs;
    }
  }

  /** Waits for queued forward calls, then frees weights and the KV pool. Idempotent. */
  async close(): Promise<void> {
    await this.#queue;
    this.#handle?.close();
    this.#handle = null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** STREAM-like triad bandwidth over all threads, in bytes per second. */
export async function measureMemoryBandwidth(options?: {
  bytesPerArray?: number;
  repeats?: number;
  numThreads?: number;
}): Promise<number> {
  return loadAddon('cpu').measureMemoryBandwidth(options);
}
