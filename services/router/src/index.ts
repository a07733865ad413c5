// @tandem/router: the OpenAI-compatible gateway (validation, policies, KV index, admission).
export { ApiKeyTable, type KeyLimits, loadApiKeys, unlimitedKey } from './auth/api-keys.ts';
export * from './cluster/circuit-breaker.ts';
export { DecisionLog } from './cluster/decision-log.ts';
export { Dispatcher, type DispatcherParams } from './cluster/dispatcher.ts';
export { InflightCounts } from './cluster/inflight.ts';
export { type WorkerRecord, WorkerRegistry } from './cluster/worker-registry.ts';
export * from './errors.ts';
export * from './kv/block-keys.ts';
export * from './kv/kv-index.ts';
export * from './policy/policies.ts';
export * from './policy/string-hash.ts';
export type * from './policy/types.ts';
export { RouterApp } from './router-app.ts';
export { routerUsage, runRouterCommand } from './router-command.ts';
export {
  defaultRouterOptions,
  type RouterOptions,
  type RouterValues,
  routerOptions,
  routerOptionsFrom,
} from './router-options.ts';
