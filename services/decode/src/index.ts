// @tandem/decode: the decode role (reservations under a lease, remote prefill by a prefill
// worker, the KV receiver).
export { decodeRole } from './decode-role.ts';
export { PrefillDirectory } from './prefill-directory.ts';
export {
  type PrefillSampling,
  RemotePrefillHost,
  type RemotePrefillOptions,
  type RemotePrefillStats,
} from './remote-prefill.ts';
