// What the engine needs from an executor. @tandem/executor's Executor satisfies it; tests can
// pass another implementation (the shadow executor) and the scheduler bench needs none.
import type {
  ExecutorStats,
  ForwardOptions,
  KvLayout,
  ModelInfo,
  SequenceInput,
  SequenceOutput,
} from '@tandem/executor';

export type {
  ExecutorOptions,
  ExecutorStats,
  ForwardOptions,
  KvLayout,
  ModelInfo,
  SampleOutput,
  SamplingParams,
  SequenceInput,
  SequenceOutput,
} from '@tandem/executor';

export interface ModelExecutor {
  readonly info: ModelInfo;
  readonly kvLayout: KvLayout;
  readonly stats: ExecutorStats;
  /**
   * One batched forward pass, off the JS thread. Outputs are in batch order. options.onLayerDone
   * reports each layer, in order, all before the promise resolves (ForwardOptions).
   */
  forward(batch: SequenceInput[], options?: ForwardOptions): Promise<SequenceOutput[]>;
  close(): Promise<void>;
}
