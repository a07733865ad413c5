// What the engine needs from an executor. @tandem/executor's Executor satisfies it; the scheduler
// bench drives the scheduler without one.
// TODO(executor): import from '@tandem/executor' once native/executor/src/index.ts lands.
export type {
  ExecutorOptions,
  ExecutorStats,
  KvLayout,
  ModelInfo,
  SampleOutput,
  SamplingParams,
  SequenceInput,
  SequenceOutput,
} from '../../../native/executor/src/types.ts';

import type {
  ExecutorStats,
  KvLayout,
  ModelInfo,
  SequenceInput,
  SequenceOutput,
} from '../../../native/executor/src/types.ts';

export interface ModelExecutor {
  readonly modelInfo: ModelInfo;
  readonly kvLayout: KvLayout;
  readonly stats: ExecutorStats;
  /** One batched forward pass, off the JS thread. Outputs are in batch order. */
  forward(batch: SequenceInput[]): Promise<SequenceOutput[]>;
  close(): Promise<void>;
}
