// @tandem/runtime: the library prefill and decode workers run on.
export * from './engine.ts';
export * from './errors.ts';
export type { ModelExecutor, SamplingParams } from './executor-port.ts';
export * from './kv-events.ts';
export * from './page-allocator.ts';
export * from './radix-cache.ts';
export * from './scheduler.ts';
export type { RequestState, Sequence, SequenceStatus } from './sequence.ts';
