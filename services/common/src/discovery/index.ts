export * from './follow.ts';
export * from './leases.ts';
export * from './worker-directory.ts';
