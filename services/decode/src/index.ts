// @tandem/decode: the decode worker service. Today: the unified worker (local prefill + decode).
export * from './convert.ts';
export type { ModelFacts, WorkerEngine } from './engine-port.ts';
export * from './errors.ts';
export { KvEventPublisher } from './kv-event-publisher.ts';
export { startUnifiedWorker, type UnifiedWorker, type UnifiedWorkerOptions } from './unified-worker.ts';
export { runWorkerCommand, workerUsage } from './worker-command.ts';
export { WorkerService, type WorkerServiceOptions } from './worker-service.ts';
