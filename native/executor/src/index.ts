// @tandem/executor: the native model runner's TypeScript facade.

export { parseDevice } from './device.ts';
export {
  AddonMissingError,
  CheckpointError,
  DeviceError,
  ExecutorClosedError,
  type ExecutorErrorReason,
  InternalExecutorError,
  InvalidBatchError,
  isExecutorError,
  ModelConfigError,
  OutOfMemoryError,
} from './errors.ts';
export { defaultSampling, Executor, measureMemoryBandwidth } from './executor.ts';
export { isAddonBuilt, loadAddon } from './loader.ts';
export {
  float32Tensor,
  readSafetensorsHeader,
  type SafetensorsDType,
  type TensorEntry,
  type TensorToWrite,
  writeSafetensors,
} from './safetensors.ts';
export type * from './types.ts';
export { largeBatchSequences } from './types.ts';
