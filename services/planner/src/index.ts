// @tandem/planner: the autoscaler of the prefill and decode pools (see README.md).
export * from './config.ts';
export * from './decide.ts';
export * from './kubernetes-scaler.ts';
export * from './planner-command.ts';
export * from './planner-loop.ts';
export * from './planner-metrics.ts';
export * from './planner-options.ts';
export * from './prometheus-signals.ts';
export * from './types.ts';
