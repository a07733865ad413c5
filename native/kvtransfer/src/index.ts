export * from './errors.ts';
export type {
  AddonKind,
  KvBuildInfo,
  KvEndpointView,
  KvOffer,
  KvReceiverCapabilities,
  KvTransport,
  KvTransportCandidate,
  KvTransportPreference,
} from './native.ts';
export {
  KvReceiver,
  type KvReceiverEvent,
  type KvReceiverOptions,
} from './receiver.ts';
export { MemoryRegion } from './region.ts';
export { KvSender, type KvSenderOptions, newTransferId, type PageCopy, type RangeCopy } from './sender.ts';
export {
  type KvDType,
  type KvPoolLayout,
  type KvSpec,
  pageBytesOf,
  pageCopyBytes,
  pageRanges,
  poolBytesOf,
  specFromLayout,
} from './spec.ts';
export { chooseTransport, type KvTransportChoice, kvtransferBuildInfo } from './transport.ts';
