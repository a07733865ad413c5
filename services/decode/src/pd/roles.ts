// What the prefill and decode roles add to a worker (startUnifiedWorker's `roleExtras`):
// - prefill: the Prefill gRPC service on the worker's server, pushing KV through a sender pool;
// - decode: a kvtransfer receiver on the engine's pool and the remotePrefill hook for requests
//   the router sends to a prefill worker (or that carry no decision: then D picks one itself).
import { connectNats, type grpc, type Logger, type NatsConnection } from '@tandem/common';
import { MemoryRegion, specFromLayout } from '@tandem/kvtransfer';
import { addPrefillService, KvSenderPool, PrefillService } from '@tandem/prefill';
import type { Engine, GenerateHooks, GenerateRequest } from '@tandem/runtime';
import type { PrefillChoice } from './prefill-choice.ts';
import { PrefillDirectory } from './prefill-directory.ts';
import { RemotePrefillHost } from './remote-prefill.ts';

export type WorkerRole = 'unified' | 'prefill' | 'decode';

export interface RoleExtras {
  role: WorkerRole;
  /** Adds the role's services to the worker's gRPC server (before it starts serving). */
  extendServer(server: grpc.Server): void;
  /** Engine hooks for a Generate under the router's prefill decision (decode role), else null. */
  hooksFor: ((request: GenerateRequest, choice: PrefillChoice) => GenerateHooks) | null;
  /** Requests of the role in flight (prefill role: Prefill calls). */
  numRunning(): number;
  /** Decode role: KV transfers into this worker in flight and their bytes landed so far. */
  transferProgress(): { numTransfers: number; numBytes: number };
  abortAll(): void;
  close(): Promise<void>;
}

export function prefillRoleExtras(engine: Engine, modelName: string, numStreams = 2): RoleExtras {
  const senders = new KvSenderPool({
    spec: specFromLayout(modelName, engine.kvLayout),
    region: MemoryRegion.fromKvLayout(engine.kvLayout),
    numStreams,
  });
  const service = new PrefillService({ engine, senders });
  return {
    role: 'prefill',
    extendServer: (server) => addPrefillService(server, service.handle),
    hooksFor: null,
    numRunning: () => service.numRunning,
    transferProgress: () => ({ numTransfers: 0, numBytes: 0 }),
    abortAll: () => service.abortAll(),
    close: () => senders.close(),
  };
}

export async function decodeRoleExtras(
  engine: Engine,
  modelName: string,
  options: {
    kvHost: string;
    kvAdvertiseHost: string;
    leaseMs?: number;
    /** Discovery of prefill workers (null: only those a request names). */
    natsUrl: string | null;
    disaggThreshold?: number;
    logger: Logger;
  },
): Promise<RoleExtras> {
  const nc: NatsConnection | null =
    options.natsUrl === null
      ? null
      : await connectNats({ url: options.natsUrl, name: 'tandem-decode-prefill-directory' });
  const directory = new PrefillDirectory({ nc, modelName, logger: options.logger });
  const host = new RemotePrefillHost({
    directory,
    ...(options.disaggThreshold === undefined ? {} : { disaggThreshold: options.disaggThreshold }),
    engine,
    modelName,
    kvHost: options.kvHost,
    kvAdvertiseHost: options.kvAdvertiseHost,
    ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
    logger: options.logger,
  });
  options.logger.info('kv receiver listening', host.kvEndpoint);
  return {
    role: 'decode',
    extendServer: () => {},
    hooksFor: (request, choice) => host.hooksFor(request, choice),
    numRunning: () => 0,
    transferProgress: () => host.transferProgress(),
    abortAll: () => {},
    close: async () => {
      host.close();
      await nc?.drain().catch(() => {});
    },
  };
}
