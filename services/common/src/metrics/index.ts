export * from './metrics-server.ts';
export * from './process-metrics.ts';
export * from './registry.ts';
