export * from './follow.ts';
export * from './leases.ts';
export * from './membership.ts';
export * from './worker-directory.ts';
