// What the worker service needs from the runtime Engine (services/runtime/src/engine.ts).
import type {
  BlockDump,
  EngineStats,
  GenerateHooks,
  GenerateRequest,
  KvEvent,
  LoadReport,
  ModelExecutor,
  TokenChunk,
} from '@tandem/runtime';

export type ModelInfo = ModelExecutor['info'];
export type KvLayout = ModelExecutor['kvLayout'];
export type SamplingParams = GenerateRequest['sampling'];

export interface WorkerEngine {
  generate(request: GenerateRequest, signal?: AbortSignal, hooks?: GenerateHooks): AsyncIterable<TokenChunk>;
  load(): LoadReport;
  onKvEvent(listener: (event: KvEvent) => void): () => void;
  dumpBlocks(): BlockDump;
  stats(): EngineStats;
  close(): Promise<void>;
}

/** The model facts the service reports (Info, announcements) and validates against. */
export interface ModelFacts {
  modelName: string;
  modelInfo: ModelInfo;
  kvLayout: KvLayout;
}
