// `tandem worker`: options -> engine -> worker host with its role, until SIGTERM / SIGINT (then
// drain). The roles come from the caller (services/cli/src/commands/worker.ts passes the prefill
// and decode roles), so the host depends on no role package.
import { hostname } from 'node:os';
import { basename, resolve } from 'node:path';
import {
  ConfigError,
  clusterSecurityFrom,
  type Logger,
  type OptionValues,
  runCommand,
  untilSignal,
} from '@tandem/common';
import { parseDevice } from '@tandem/executor';
import { Engine } from '@tandem/runtime';
import { OutputConstraints } from './constraints.ts';
import type { RoleFactory, RoleName } from './role.ts';
import { startWorker } from './worker-host.ts';
import { workerOptions } from './worker-options.ts';

export const workerUsage = workerOptions.usage;

type WorkerValues = OptionValues<typeof workerOptions.specs>;

/** Runs a worker until a signal; returns the exit code. */
export function runWorkerCommand(argv: string[], roles: Record<RoleName, RoleFactory>): Promise<number> {
  return runCommand(
    'worker',
    workerOptions,
    argv,
    (values, logger) => serve(values, roles, logger),
    (values) => (values.role === 'unified' ? 'tandem-worker' : `tandem-${values.role}`),
  );
}

/** A URL flag, where 'none' switches the service off. */
function urlOrNone(url: string | null): string | null {
  return url === null || url === 'none' ? null : url;
}

async function serve(
  values: WorkerValues,
  roles: Record<RoleName, RoleFactory>,
  logger: Logger,
): Promise<number> {
  if (values.model === null) throw new ConfigError('--model DIR is required', { param: '--model' });
  const modelDir = resolve(values.model);
  const security = clusterSecurityFrom(values);
  const engine = await Engine.create({
    executor: {
      modelDir,
      device: parseDevice(values.device),
      ...(values.dtype === null ? {} : { dtype: values.dtype }),
      pageSize: values['page-size'],
      ...(values['num-pages'] === null ? {} : { numPages: values['num-pages'] }),
      ...(values['kv-cache-fraction'] === null ? {} : { kvCacheFraction: values['kv-cache-fraction'] }),
      ...(values.threads === null ? {} : { numThreads: values.threads }),
      ropeFrequencyRounding: values['rope-frequency-rounding'],
    },
    scheduler: {
      enablePrefixCache: !values['no-prefix-cache'],
      ...(values['max-batch-tokens'] === null ? {} : { maxBatchTokens: values['max-batch-tokens'] }),
      ...(values['max-running'] === null ? {} : { maxRunningSequences: values['max-running'] }),
      maxPrefillChunkTokens: values['prefill-chunk'],
    },
  });
  const modelName = values['served-model-name'] ?? basename(modelDir);
  const constraints = OutputConstraints.start(modelDir, engine.modelInfo.vocabSize, logger);
  const kvHost = values['kv-host'] ?? values.host;
  const role = values.role === 'unified' ? null : values.role;
  let worker: Awaited<ReturnType<typeof startWorker>>;
  try {
    worker = await startWorker({
      engine,
      model: { modelName, modelInfo: engine.modelInfo, kvLayout: engine.kvLayout },
      device: engine.kvLayout.device,
      host: values.host,
      port: values.port,
      advertiseAddress: values['advertise-address'],
      workerId: values['worker-id'],
      natsUrl: urlOrNone(values.nats),
      redisUrl: urlOrNone(values.redis),
      security,
      timings: {
        heartbeatIntervalMs: values['heartbeat-interval-ms'],
        leaseTtlMs: values['lease-ttl-ms'],
        loadIntervalMs: values['load-interval-ms'],
      },
      logger,
      constraints,
      metricsPort: values['no-metrics'] ? null : values['metrics-port'],
      metricsEnabled: !values['no-metrics'],
      role:
        role === null
          ? null
          : {
              name: role,
              factory: roles[role],
              options: {
                kvHost,
                kvAdvertiseHost: kvHost === '0.0.0.0' || kvHost === '::' ? hostname() : kvHost,
                prefillLeaseMs: values['prefill-lease-ms'],
                prefillStallMs: values['prefill-stall-ms'],
                disaggThreshold: values['disagg-threshold'],
                kvStreams: values['kv-streams'],
              },
            },
    });
  } catch (error) {
    await engine.close();
    await constraints.close();
    throw error;
  }
  // One JSON line on stdout: how launchers and tests learn the bound port.
  process.stdout.write(
    `${JSON.stringify({ event: 'ready', workerId: worker.workerId, grpcAddress: worker.grpcAddress, port: worker.port, metricsAddress: worker.metricsAddress, pid: process.pid })}\n`,
  );
  const signal = await untilSignal(logger);
  logger.info('stopping', { signal });
  await worker.close(values['drain-grace-ms']);
  return 0;
}
