// The wire contracts: generated protobuf-es schemas (proto/gen, from `pnpm proto:gen`) and the
// Worker and Prefill service descriptors. Import from here, never from proto/gen directly.

// protobuf-es runtime helpers, so consumers need no direct dependency for the common operations.
export type { MessageInitShape, MessageShape } from '@bufbuild/protobuf';
export { clone, create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
export * from '../gen/tandem/prefill/v1/prefill_pb.js';
export * from '../gen/tandem/worker/v1/common_pb.js';
export * from '../gen/tandem/worker/v1/events_pb.js';
export * from '../gen/tandem/worker/v1/worker_pb.js';
