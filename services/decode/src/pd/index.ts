// Disaggregation on the decode worker: remote prefill into reserved pages over kvtransfer, and
// what the prefill / decode roles add to a worker.
export { type PrefillChoice, prefillChoiceFromWire } from './prefill-choice.ts';
export { RemotePrefillHost, type RemotePrefillOptions, type RemotePrefillStats } from './remote-prefill.ts';
export { decodeRoleExtras, prefillRoleExtras, type RoleExtras, type WorkerRole } from './roles.ts';
