// Disaggregation on the decode worker: remote prefill into reserved pages over kvtransfer.
export { RemotePrefillHost, type RemotePrefillOptions, type RemotePrefillStats } from './remote-prefill.ts';
