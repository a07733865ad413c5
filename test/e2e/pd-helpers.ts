// In-process PD pair for the pd-* tests: a decode engine with its kvtransfer receiver and a
// prefill engine behind a real gRPC Prefill server, KV moving over real loopback sockets.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { addGrpcService, grpc } from '@tandem/common';
import { type PrefillSampling, RemotePrefillHost } from '@tandem/decode';
import { defaultSampling } from '@tandem/executor';
import { MemoryRegion, specFromLayout } from '@tandem/kvtransfer';
import { KvSenderPool, PrefillService } from '@tandem/prefill';
import { create, Prefill, SamplingParamsSchema } from '@tandem/proto';
import { Engine, type GenerateHooks, type GenerateRequest } from '@tandem/runtime';
import type { OutputConstraints } from '@tandem/worker';

const root = fileURLToPath(new URL('../../', import.meta.url));

export interface GoldenCase {
  prompt_ids: number[];
  greedy_ids: number[];
}

export interface PdFixture {
  name: string;
  dir: string;
  cases: GoldenCase[]; // text_cases then chat_cases
}

export const fixtureNames = [
  'tiny-llama',
  'tiny-llama-bf16',
  'tiny-llama31',
  'tiny-qwen2',
  'tiny-qwen3',
  'tandem-demo-code',
];

export function pdFixture(name: string): PdFixture {
  const dir = name === 'tandem-demo-code' ? `${root}deploy/models/${name}` : `${root}test/fixtures/${name}`;
  const golden = JSON.parse(readFileSync(`${dir}/golden.json`, 'utf8')) as {
    text_cases: GoldenCase[];
    chat_cases?: GoldenCase[];
  };
  return { name, dir, cases: [...golden.text_cases, ...(golden.chat_cases ?? [])] };
}

export interface PdPair {
  decode: Engine;
  prefill: Engine;
  host: RemotePrefillHost;
  service: PrefillService;
  prefillAddress: string;
  close(): Promise<void>;
}

/** `constraints`: the prefill worker's constraint compiler (null: it refuses constrained prompts). */
export async function startPdPair(
  dir: string,
  modelName: string,
  numPages = 128,
  constraints: OutputConstraints | null = null,
): Promise<PdPair> {
  const open = (): Promise<Engine> =>
    Engine.create({ executor: { modelDir: dir, pageSize: 16, numPages, numThreads: 1 } });
  const [decode, prefill] = await Promise.all([open(), open()]);
  const host = new RemotePrefillHost({ engine: decode, modelName, leaseMs: 20_000 });
  const senders = new KvSenderPool({
    spec: specFromLayout(modelName, prefill.kvLayout),
    region: MemoryRegion.fromKvLayout(prefill.kvLayout),
    numStreams: 2,
  });
  const service = new PrefillService({ engine: prefill, senders, constraints });
  const server = new grpc.Server();
  addGrpcService(server, Prefill, service.implementation());
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error === null ? resolve(bound) : reject(error),
    ),
  );
  return {
    decode,
    prefill,
    host,
    service,
    prefillAddress: `127.0.0.1:${port}`,
    async close() {
      server.forceShutdown();
      host.close();
      await senders.close();
      await Promise.all([decode.close(), prefill.close()]);
    },
  };
}

/** The wire sampling of greedyRequest's Generate call, which a prefill worker resolves the same way. */
export const greedySampling: PrefillSampling = {
  sampling: create(SamplingParamsSchema, { temperature: 0 }),
  topLogprobs: 0,
};

export function greedyRequest(requestId: string, promptTokenIds: number[], maxTokens = 24): GenerateRequest {
  return {
    requestId,
    promptTokenIds,
    sampling: defaultSampling(),
    maxTokens,
    minTokens: 0,
    stopTokenIds: [],
    ignoreEos: true,
    n: 1,
    logprobs: false,
    cacheNamespace: null,
    constraint: null,
  };
}

export interface Generated {
  tokenIds: number[];
  numCachedTokens: number;
}

export async function generate(
  engine: Engine,
  request: GenerateRequest,
  hooks: GenerateHooks = {},
  signal?: AbortSignal,
): Promise<Generated> {
  const tokenIds: number[] = [];
  let numCachedTokens = 0;
  for await (const chunk of engine.generate(request, signal, hooks)) {
    tokenIds.push(...chunk.tokenIds);
    numCachedTokens = chunk.numCachedTokens;
  }
  return { tokenIds, numCachedTokens };
}

/** Free plus evictable pages equal the pool, and every page's refcount equals its holders. */
export function assertNoHeldPages(engine: Engine): void {
  engine.checkInvariants();
  const load = engine.load();
  if (load.numRunning !== 0 || load.numWaiting !== 0) {
    throw new Error(`engine still has ${load.numRunning} running / ${load.numWaiting} waiting`);
  }
  if (load.numFreePages + load.numEvictablePages !== load.numTotalPages) {
    throw new Error(
      `held pages: free ${load.numFreePages} + evictable ${load.numEvictablePages} != ${load.numTotalPages}`,
    );
  }
}
