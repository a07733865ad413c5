// Test helpers for anything that talks to workers: a real worker process through the CLI, and a
// greedy Generate client. Import from '@tandem/worker/testing' (kept out of the main entry).
export * from './generate-client.ts';
export * from './test-device.ts';
export * from './worker-process.ts';
