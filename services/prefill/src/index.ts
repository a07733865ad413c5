// @tandem/prefill: the prefill worker (prefill-only runtime, KV pushed into decode workers' pages).
export * from './errors.ts';
export { KvSenderPool } from './kv-sender-pool.ts';
export {
  addPrefillService,
  type KvDestination,
  PrefillClient,
  type PrefillHandler,
  type PrefillRequestWire,
  type PrefillResponseWire,
  prefillServiceDefinition,
} from './prefill-rpc.ts';
export { PrefillService, type PrefillServiceStats } from './prefill-service.ts';
