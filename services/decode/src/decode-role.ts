// The decode role: a kvtransfer receiver on the engine's KV pool and the remotePrefill hook for
// requests the router sends to a prefill worker (or that carry no decision: then this worker picks
// one of the prefill workers discovery knows, on the host's NATS connection).
import { grpcClientOptions, membershipVerifier } from '@tandem/common';
import { type RoleFactory, registerKvTransferMetrics } from '@tandem/worker';
import { PrefillDirectory } from './prefill-directory.ts';
import { RemotePrefillHost } from './remote-prefill.ts';

export const decodeRole: RoleFactory = async (context, options) => {
  const { engine, modelName, logger } = context;
  const directory = new PrefillDirectory({
    nc: context.nc,
    modelName,
    pageSize: engine.pageSize,
    logger,
    // Prompts go only to prefill workers that proved membership.
    verify: membershipVerifier(context.security, logger),
  });
  const transfers = registerKvTransferMetrics(context.metrics, 'receive');
  const host = new RemotePrefillHost({
    metrics: transfers,
    directory,
    disaggThreshold: options.disaggThreshold,
    engine,
    modelName,
    kvHost: options.kvHost,
    kvAdvertiseHost: options.kvAdvertiseHost,
    leaseMs: options.prefillLeaseMs,
    clientOptions: grpcClientOptions(context.security),
    stallMs: options.prefillStallMs,
    logger,
  });
  transfers.bytesMetric.track(transfers.labels, () => host.stats.numBytesReceived);
  transfers.inFlightMetric.track(transfers.labels, () => host.transferProgress().numTransfers);
  const prompts = context.metrics.counter(
    'tandem_decode_prefills_total',
    'Prompts of a decode worker by where they were prefilled',
  );
  prompts.track({ where: 'remote' }, () => host.stats.numRemotePrefills);
  prompts.track({ where: 'local_by_request' }, () => host.stats.numLocalByRequest);
  prompts.track({ where: 'local_below_threshold' }, () => host.stats.numBelowThreshold);
  prompts.track({ where: 'local_fallback' }, () => host.stats.numFallbacks);
  logger.info('kv receiver listening', host.kvEndpoint);
  return {
    name: 'decode',
    kvAddress: `${host.kvEndpoint.host}:${host.kvEndpoint.port}`,
    addServices: () => {},
    generateHooks: (request, decision, wire) =>
      host.hooksFor(request, decision, {
        sampling: wire.sampling,
        topLogprobs: wire.logprobs ? wire.topLogprobs : 0,
        constraint: wire.constraint,
      }),
    transferProgress: () => host.transferProgress(),
    numRunning: () => 0,
    abortAll: () => {},
    close: async () => host.close(),
  };
};
