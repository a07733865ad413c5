// The decode role: a kvtransfer receiver on the engine's KV pool and the remotePrefill hook for
// requests the router sends to a prefill worker (or that carry no decision: then this worker picks
// one of the prefill workers discovery knows, on the host's NATS connection).
import { grpcClientOptions, membershipVerifier } from '@tandem/common';
import type { RoleFactory } from '@tandem/worker';
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
  const host = new RemotePrefillHost({
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
  logger.info('kv receiver listening', host.kvEndpoint);
  return {
    name: 'decode',
    kvAddress: `${host.kvEndpoint.host}:${host.kvEndpoint.port}`,
    addServices: () => {},
    generateHooks: (request, decision, wire) =>
      host.hooksFor(request, decision, {
        sampling: wire.sampling,
        topLogprobs: wire.logprobs ? wire.topLogprobs : 0,
      }),
    transferProgress: () => host.transferProgress(),
    numRunning: () => 0,
    abortAll: () => {},
    close: async () => host.close(),
  };
};
