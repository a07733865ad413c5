// The prefill role: the Prefill gRPC service on the worker's server, computing prompts on the
// worker's engine and pushing their KV into decode workers' pages through a kvtransfer sender pool.
import { addGrpcService, membershipVerifier } from '@tandem/common';
import { MemoryRegion, specFromLayout } from '@tandem/kvtransfer';
import { Prefill } from '@tandem/proto';
import { type RoleFactory, registerKvTransferMetrics } from '@tandem/worker';
import { KvDestinations } from './kv-destinations.ts';
import { KvSenderPool } from './kv-sender-pool.ts';
import { PrefillService } from './prefill-service.ts';

export const prefillRole: RoleFactory = async (context, options) => {
  const { engine, modelName } = context;
  const senders = new KvSenderPool({
    spec: specFromLayout(modelName, engine.kvLayout),
    region: MemoryRegion.fromKvLayout(engine.kvLayout),
    numStreams: options.kvStreams,
    logger: context.logger,
  });
  // KV goes only to the receivers decode workers announced (verified members, when required).
  const destinations = new KvDestinations({
    nc: context.nc,
    modelName,
    pageSize: engine.pageSize,
    logger: context.logger,
    verify: membershipVerifier(context.security, context.logger),
  });
  const service = new PrefillService({
    engine,
    senders,
    destinations,
    metrics: registerKvTransferMetrics(context.metrics, 'send'),
    constraints: context.constraints,
  });
  const calls = context.metrics.counter('tandem_prefill_requests_total', 'Prefill calls served, by outcome');
  calls.track({ outcome: 'ok' }, () => service.stats.numPrefills);
  calls.track({ outcome: 'failed' }, () => service.stats.numFailed);
  context.metrics
    .gauge('tandem_prefill_requests_running', 'Prefill calls in progress')
    .track({}, () => service.numRunning);
  context.metrics
    .counter('tandem_kv_layer_pushes_total', 'KV pushes of one layer made while later layers computed')
    .track({}, () => service.stats.numLayerSends);
  return {
    name: 'prefill',
    kvAddress: null,
    addServices: (server, serviceOptions) =>
      addGrpcService(server, Prefill, service.implementation(), serviceOptions),
    generateHooks: () => null,
    transferProgress: () => ({ numTransfers: 0, numBytes: 0 }),
    numRunning: () => service.numRunning,
    abortAll: () => service.abortAll(),
    close: async () => {
      destinations.close();
      await senders.close();
    },
  };
};
