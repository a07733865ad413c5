// @tandem/prefill: the prefill role (prefill-only requests on the worker's engine, KV pushed into
// decode workers' pages).
export * from './errors.ts';
export { KvDestinations, UnknownDestinationError } from './kv-destinations.ts';
export { KvSenderPool } from './kv-sender-pool.ts';
export { prefillRole } from './prefill-role.ts';
export { PrefillService, type PrefillServiceStats } from './prefill-service.ts';
