// A model executor that costs nothing: every forward pass "samples" the next word of a cycle of
// whole-word tokens (`▁the`, `▁return`...) from the checkpoint's real vocabulary, so the worker
// around it (the real Engine, scheduler, chunk merging for slow readers, gRPC service, NATS
// announcements and Redis lease) emits tokens at line rate. A step lasts at least `stepMs`
// (0: the next macrotask), like a GPU step of that length whatever the batch.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { ExecutorStats, KvLayout, ModelInfo, SequenceInput, SequenceOutput } from '@tandem/executor';
import type { ModelExecutor } from '@tandem/runtime';

/** Every token that is one lowercase word with its leading space (each decodes to " word"). */
export function wordTokenIds(modelDir: string): number[] {
  const tokenizer = JSON.parse(readFileSync(join(modelDir, 'tokenizer.json'), 'utf8')) as {
    model: { vocab: Record<string, number> };
  };
  const ids = Object.entries(tokenizer.model.vocab)
    .filter(([piece]) => /^\u2581[a-z]{2,}$/.test(piece))
    .map(([, id]) => id);
  if (ids.length === 0) throw new Error(`${modelDir}: no whole-word tokens in the vocabulary`);
  return ids;
}

export interface LineRateOptions {
  modelDir: string;
  numPages: number;
  pageSize: number;
  stepMs: number;
}

export class LineRateExecutor implements ModelExecutor {
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
  readonly #words: number[];
  readonly #stepMs: number;
  #lastStepAt = 0;

  constructor(options: LineRateOptions) {
    const config = JSON.parse(readFileSync(join(options.modelDir, 'config.json'), 'utf8')) as {
      vocab_size: number;
      max_position_embeddings: number;
      eos_token_id: number;
      bos_token_id: number;
    };
    this.#words = wordTokenIds(options.modelDir);
    this.#stepMs = options.stepMs;
    this.info = {
      architecture: 'LlamaForCausalLM',
      modelType: 'llama',
      numLayers: 1,
      hiddenSize: 8,
      numHeads: 1,
      numKvHeads: 1,
      headDim: 8,
      intermediateSize: 8,
      vocabSize: config.vocab_size,
      maxPositionEmbeddings: config.max_position_embeddings,
      bosTokenId: config.bos_token_id,
      eosTokenIds: [config.eos_token_id],
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

  async forward(batch: SequenceInput[]): Promise<SequenceOutput[]> {
    this.stats.forwardCalls++;
    const waitMs = this.#lastStepAt + this.#stepMs - performance.now();
    if (waitMs > 0) await sleep(waitMs);
    else await nextTurn();
    this.#lastStepAt = performance.now();
    const words = this.#words;
    return batch.map((input) => {
      this.stats.forwardTokens += input.tokenIds.length;
      const position = input.startPos + input.tokenIds.length;
      return {
        samples: Array.from(input.sampleIndices, (index) => ({
          index,
          tokenId: words[position % words.length]!,
          logprob: -1,
          topLogprobs: [],
          logits: null,
          probs: null,
        })),
        targetLogprobs: null,
      };
    });
  }

  async close(): Promise<void> {}
}
