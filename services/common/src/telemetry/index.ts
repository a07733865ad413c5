export * from './grpc-tracing.ts';
export * from './phase-spans.ts';
export * from './tracing.ts';
