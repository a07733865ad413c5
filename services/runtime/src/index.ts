// @tandem/runtime: the library prefill and decode workers run on (and the router's tokenizer).
export * from './block-hash.ts';
export * from './chat-template.ts';
export * from './detokenizer.ts';
export * from './engine.ts';
export * from './errors.ts';
export type { ModelExecutor } from './executor-port.ts';
export * from './kv-events.ts';
export * from './page-allocator.ts';
export * from './radix-cache.ts';
export * from './scheduler.ts';
export type { RequestState, Sequence, SequenceStatus } from './sequence.ts';
export * from './tokenizer.ts';
