// @tandem/worker: the worker process host (flags, gRPC server, announcer, lease, KV-event
// publisher, drain) that the prefill and decode roles plug into; alone, a unified worker.
export { OutputConstraints, specFromWire } from './constraints.ts';
export * from './convert.ts';
export type { ModelFacts, WorkerEngine } from './engine-port.ts';
export * from './errors.ts';
export { KvEventPublisher } from './kv-event-publisher.ts';
export * from './kv-transfer-metrics.ts';
export * from './prefill-decision.ts';
export type * from './role.ts';
export { type StepCostFit, StepCostModel, type StepSample } from './step-cost.ts';
export { runWorkerCommand, workerUsage } from './worker-command.ts';
export {
  defaultPresenceTimings,
  type PresenceTimings,
  startWorker,
  type WorkerHost,
  type WorkerHostOptions,
} from './worker-host.ts';
export { workerOptions } from './worker-options.ts';
export { WorkerService, type WorkerServiceOptions } from './worker-service.ts';
