// A test executor that checks the scheduler's page bookkeeping instead of doing arithmetic. It
// keeps a shadow KV pool of token ids: forward() writes each new token into the slot its page
// table names (after an await, as the native executor writes off the JS thread), and every sample
// reads the whole prefix back through the page table. The "model" is a hash of that read-back
// prefix, so a wrong page table, a page reused while still in use, or a cached page holding other
// tokens changes the output (or throws), and tests compare against shadowNextToken() on the
// true tokens.

import { setImmediate } from 'node:timers/promises';
import type {
  ExecutorStats,
  ForwardOptions,
  KvLayout,
  ModelInfo,
  SequenceInput,
  SequenceOutput,
} from '@tandem/executor';
import type { ModelExecutor } from '../src/executor-port.ts';

export const shadowVocabSize = 50;
export const shadowEosTokenId = 2;

/** The next token after `tokenIds` (greedy), plus `seed` when sampling. */
export function shadowNextToken(
  tokenIds: ArrayLike<number>,
  length = tokenIds.length,
  seed: number | null = null,
): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < length; i++) hash = Math.imul(hash ^ tokenIds[i]!, 0x01000193) >>> 0;
  if (seed !== null) hash = Math.imul(hash ^ seed, 0x01000193) >>> 0;
  // Avoid EOS most of the time so sequences run to max tokens unless a test wants EOS.
  return hash % shadowVocabSize;
}

/** Greedy reference generation on the true tokens. */
export function shadowGenerate(
  promptTokenIds: readonly number[],
  maxTokens: number,
  seed: number | null = null,
): number[] {
  const tokens = [...promptTokenIds];
  for (let i = 0; i < maxTokens; i++) tokens.push(shadowNextToken(tokens, tokens.length, seed));
  return tokens.slice(promptTokenIds.length);
}

export class ShadowExecutor implements ModelExecutor {
  readonly info: ModelInfo;
  readonly kvLayout: KvLayout;
  readonly stats: ExecutorStats = {
    forwardTokens: 0,
    forwardCalls: 0,
    layerReportsLive: 0,
    deviceBusyMs: 0,
    deviceIdleMs: 0,
    deviceBusyMsLarge: 0,
    deviceIdleMsLarge: 0,
  };
  private readonly pool: Int32Array; // [numPages * pageSize] token id stored at each KV slot, -1 empty
  private readonly pageSize: number;
  /** Max sequences seen in one forward call. */
  maxBatchSize = 0;

  constructor(options: { numPages: number; pageSize: number; maxPositionEmbeddings?: number }) {
    this.pageSize = options.pageSize;
    this.pool = new Int32Array(options.numPages * options.pageSize).fill(-1);
    this.info = {
      architecture: 'ShadowForTests',
      modelType: 'shadow',
      numLayers: 1,
      hiddenSize: 8,
      numHeads: 1,
      numKvHeads: 1,
      headDim: 8,
      intermediateSize: 8,
      vocabSize: shadowVocabSize,
      maxPositionEmbeddings: options.maxPositionEmbeddings ?? 4096,
      bosTokenId: 1,
      eosTokenIds: [shadowEosTokenId],
      storedDtype: 'float32',
      computeDtype: 'float32',
      tieWordEmbeddings: false,
    };
    this.kvLayout = {
      device: 'cpu',
      dtype: 'float32',
      numPages: options.numPages,
      pageSize: options.pageSize,
      numLayers: 1,
      numKvHeads: 1,
      headDim: 8,
      pageBytes: options.pageSize * 32,
      totalBytes: options.numPages * options.pageSize * 64,
      baseAddress: 0n,
    };
  }

  async forward(batch: SequenceInput[], options: ForwardOptions = {}): Promise<SequenceOutput[]> {
    this.stats.forwardCalls++;
    this.maxBatchSize = Math.max(this.maxBatchSize, batch.length);
    const size = this.pageSize;
    for (const input of batch) {
      const end = input.startPos + input.tokenIds.length;
      if (input.pageTable.length !== Math.ceil(end / size)) {
        throw new RangeError(`page table has ${input.pageTable.length} pages for ${end} positions`);
      }
      this.stats.forwardTokens += input.tokenIds.length;
    }
    await setImmediate();
    for (const input of batch) {
      for (let i = 0; i < input.tokenIds.length; i++) {
        const pos = input.startPos + i;
        this.pool[input.pageTable[Math.floor(pos / size)]! * size + (pos % size)] = input.tokenIds[i]!;
      }
    }
    options.onLayerDone?.(0); // its one layer's KV is in place
    return batch.map((input) => {
      const samples = Array.from(input.sampleIndices, (index) => {
        const length = input.startPos + index + 1;
        const prefix = new Int32Array(length);
        for (let pos = 0; pos < length; pos++) {
          const token = this.pool[input.pageTable[Math.floor(pos / size)]! * size + (pos % size)]!;
          if (token < 0) throw new RangeError(`position ${pos} read before it was written`);
          prefix[pos] = token;
        }
        const tokenId = shadowNextToken(prefix, length, input.sampling.seed);
        return { index, tokenId, logprob: -length / 1000, topLogprobs: [], logits: null, probs: null };
      });
      return { samples, targetLogprobs: null };
    });
  }

  /** Writes token ids as the KV of positions [startPos, startPos + tokenIds.length) (a remote prefill). */
  writeKv(pageTable: readonly number[], startPos: number, tokenIds: readonly number[]): void {
    const size = this.pageSize;
    for (let i = 0; i < tokenIds.length; i++) {
      const pos = startPos + i;
      this.pool[pageTable[Math.floor(pos / size)]! * size + (pos % size)] = tokenIds[i]!;
    }
  }

  /** Copies the KV of positions [startPos, endPos) between pools (what kvtransfer does for real). */
  copyKvTo(
    target: ShadowExecutor,
    fromPages: readonly number[],
    toPages: readonly number[],
    startPos: number,
    endPos: number,
  ): void {
    const size = this.pageSize;
    for (let pos = startPos; pos < endPos; pos++) {
      const token = this.pool[fromPages[Math.floor(pos / size)]! * size + (pos % size)]!;
      if (token < 0) throw new RangeError(`copying position ${pos}, which was never written`);
      target.pool[toPages[Math.floor(pos / size)]! * size + (pos % size)] = token;
    }
  }

  async close(): Promise<void> {}
}
