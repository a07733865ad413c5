// The executor's public contract. TypeScript owns policy (which tokens, which pages); the native
// side owns arithmetic and memory. Absent values are `null` by contract.

export type Device = 'cpu' | `cuda:${number}`;
export type ComputeDType = 'float32' | 'bfloat16' | 'float16';

export interface ExecutorOptions {
  /** A Hugging Face checkpoint folder (config.json + *.safetensors). */
  modelDir: string;
  /** 'cpu' (default), 'cuda:N', or 'auto' (CUDA device 0 when usable, else CPU). */
  device?: Device | 'auto';
  /** Compute dtype; null picks float32 on CPU, bfloat16 on CUDA. */
  dtype?: ComputeDType | null;
  /** Tokens per KV page (default 16). */
  pageSize?: number;
  /** KV pool size in pages; null derives it from kvCacheBytes (CPU) or kvCacheFraction (CUDA). */
  numPages?: number | null;
  /** CPU: bytes for the KV pool when numPages is null (default 256 MiB). */
  kvCacheBytes?: number | null;
  /** CUDA: fraction of free device memory for the KV pool after weights (default 0.85). */
  kvCacheFraction?: number | null;
  /** CPU worker threads (default: all cores). */
  numThreads?: number | null;
  /**
   * RoPE inverse frequencies of a bf16 / f16 checkpoint: 'none' (default) keeps them in float32, as
   * transformers' from_pretrained does; 'stored-dtype' rounds them to the stored dtype, as a
   * transformers model cast with `.to(bfloat16)` after construction has them.
   */
  ropeFrequencyRounding?: 'none' | 'stored-dtype';
}

export interface ModelInfo {
  architecture: string; // e.g. 'LlamaForCausalLM'
  modelType: string; // e.g. 'llama', 'qwen2', 'qwen3', 'mistral'
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
  storedDtype: ComputeDType;
  computeDtype: ComputeDType;
  tieWordEmbeddings: boolean;
}

/**
 * The paged KV pool. Memory order: [numLayers][2 (K, V)][numPages][pageSize][numKvHeads][headDim]
 * in `dtype`, on `device`, starting at `baseAddress`. One page of K (or V) of one layer is the
 * contiguous run of `pageBytes` bytes at baseAddress + ((layer * 2 + kv) * numPages + page) * pageBytes.
 */
export interface KvLayout {
  device: Device;
  dtype: ComputeDType;
  numPages: number;
  pageSize: number;
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  /** Bytes of one page of K (or V) in one layer: pageSize * numKvHeads * headDim * sizeof(dtype). */
  pageBytes: number;
  /** Bytes of the whole pool. */
  totalBytes: number;
  /** Address of the pool's first byte (host pointer on CPU, device pointer on CUDA). */
  baseAddress: bigint;
}

/** Per-sequence sampling. Neutral values switch a filter off. */
export interface SamplingParams {
  /** 0 means greedy (argmax); otherwise logits are divided by it. */
  temperature: number;
  /** Keep the k most likely tokens; 0 (or -1) means off. */
  topK: number;
  /** Nucleus mass; 1 means off. */
  topP: number;
  /** Drop tokens whose probability is below minP * max probability; 0 means off. */
  minP: number;
  /** HF-style multiplicative penalty over prompt and output tokens; 1 means off. */
  repetitionPenalty: number;
  /** OpenAI-style additive penalties over output tokens; 0 means off. */
  frequencyPenalty: number;
  presencePenalty: number;
  /** Added to the logits of these token ids before anything else. */
  logitBias: ReadonlyMap<number, number> | null;
  /** Same seed, same output: the draw at each position depends only on (seed, position). */
  seed: number | null;
  /** How many top alternatives to return with each sample (0: none). */
  numTopLogprobs: number;
  /** Only these ids may be sampled (null: all). */
  allowedTokenIds: Int32Array | null;
  /**
   * Constrained decoding: bit `id & 31` of word `id >>> 5` set means id may be sampled (null: all).
   * At least ceil(vocabSize / 32) words; bits at or past vocabSize are ignored; it must allow some
   * token. With allowedTokenIds too, a token must be in both. A bitmask rather than an id list:
   * 16 KiB for a 128k vocabulary whatever the grammar allows, filled straight from the matcher.
   */
  allowedTokenMask: Uint32Array | null;
}

/** One sequence's share of a batched forward pass: a prefill chunk or a decode step. */
export interface SequenceInput {
  /** New tokens of this step. */
  tokenIds: Int32Array;
  /** Position of tokenIds[0]; positions before it are already in the KV pages. */
  startPos: number;
  /** Pages covering positions [0, startPos + tokenIds.length), in order. */
  pageTable: Int32Array;
  /** Indices into tokenIds after which the next token is sampled (usually the last, or none). */
  sampleIndices: Int32Array;
  sampling: SamplingParams;
  /** Prompt tokens, for the repetition penalty (null when no penalty is set). */
  promptTokenIds: Int32Array | null;
  /** Tokens generated so far, for the repetition, frequency and presence penalties. */
  outputTokenIds: Int32Array | null;
  /** Teacher forcing: targetLogprobs[i] = log p(targetIds[i] | tokens up to tokenIds[i]). */
  targetIds: Int32Array | null;
  /** Return the raw logits at each sampled index (tests, reference checks). */
  returnLogits: boolean;
  /** Return the final distribution each sample was drawn from (after every filter). */
  returnProbs: boolean;
}

export interface TopLogprob {
  tokenId: number;
  logprob: number;
}

export interface SampleOutput {
  /** The index into tokenIds this sample follows. */
  index: number;
  tokenId: number;
  /** Log-probability of tokenId under the raw model distribution (log-softmax of logits). */
  logprob: number;
  /** The numTopLogprobs most likely tokens under the raw distribution, best first. */
  topLogprobs: TopLogprob[];
  /** [vocabSize] float32, when returnLogits. */
  logits: Float32Array | null;
  /** [vocabSize] float32, when returnProbs. */
  probs: Float32Array | null;
}

/** Per-call options of Executor.forward. */
export interface ForwardOptions {
  /**
   * Called once per layer, in order, once that layer's new K/V are in the pool, while later
   * layers compute (a prefill worker starts sending that layer's pages). Every layer is reported
   * before forward resolves. It must not throw; if it does, forward rejects with that error
   * after the pass.
   */
  onLayerDone?: (layer: number) => void;
}

export interface SequenceOutput {
  samples: SampleOutput[];
  /** [tokenIds.length] float32, when targetIds was given. */
  targetLogprobs: Float32Array | null;
}

export interface ExecutorStats {
  /** Tokens that went through a forward pass since open. */
  forwardTokens: number;
  forwardCalls: number;
  /** onLayerDone reports delivered while the pass was still running (the rest came at its end). */
  layerReportsLive: number;
  /**
   * Device time of every pass and the device's idle time between consecutive passes, in ms, by
   * the executor's own clock (CUDA: device events; CPU: the host's). `Large` counts only passes of
   * at least `largeBatchSequences` sequences: the "GPU waits for the host at batch >= 64" figure.
   */
  deviceBusyMs: number;
  deviceIdleMs: number;
  deviceBusyMsLarge: number;
  deviceIdleMsLarge: number;
}

/** Passes of at least this many sequences count into the `Large` device timings. */
export const largeBatchSequences = 64;
