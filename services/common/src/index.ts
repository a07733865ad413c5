// @tandem/common: errors, logging, configuration and the NATS / Redis / gRPC plumbing every
// service shares. Test helpers are in '@tandem/common/testing'.
export * from './cluster-security.ts';
export * from './command.ts';
export * from './config.ts';
export * from './discovery/index.ts';
export * from './ensure-services.ts';
export * from './errors.ts';
export * from './grpc.ts';
export * from './kv-events-client.ts';
export * from './logger.ts';
export * from './metrics/index.ts';
export * from './nats.ts';
export * from './options.ts';
export * from './prometheus.ts';
export * from './random.ts';
export * from './redis.ts';
export * from './subjects.ts';
export * from './telemetry/index.ts';
export * from './tokenizer-config.ts';
