// `tandem planner`: options (planner-options.ts) -> Prometheus signals + Kubernetes scaler +
// decision loop, a tick every --interval-s until SIGTERM / SIGINT, with its metrics on
// --metrics-port (the common metrics server: GET /metrics, GET /healthz).
import { readFile } from 'node:fs/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, type Logger, runCommand, startMetricsServer, untilSignal } from '@tandem/common';
import { Planner } from './decide.ts';
import { KubernetesScaler } from './kubernetes-scaler.ts';
import { PlannerLoop } from './planner-loop.ts';
import { PlannerMetrics } from './planner-metrics.ts';
import { type PlannerValues, plannerConfigFrom, plannerOptions } from './planner-options.ts';
import { PrometheusSignals } from './prometheus-signals.ts';
import type { PoolName, PoolState, Scaler } from './types.ts';

export const plannerUsage = plannerOptions.usage;

/** The namespace this pod runs in, from its service account, else null. */
async function ownNamespace(): Promise<string | null> {
  return readFile('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8')
    .then((text) => text.trim() || null)
    .catch(() => null);
}

/** A Scaler that only reads (--dry-run). */
class ReadOnlyScaler implements Scaler {
  readonly #inner: Scaler;
  constructor(inner: Scaler) {
    this.#inner = inner;
  }
  read(pool: PoolName): Promise<PoolState> {
    return this.#inner.read(pool);
  }
  async scale(): Promise<void> {}
}

function required(
  values: PlannerValues,
  flag: 'prometheus' | 'prefill-deployment' | 'decode-deployment',
): string {
  const value = values[flag];
  if (value === null) throw new ConfigError(`--${flag} is required`, { param: `--${flag}` });
  return value;
}

export function runPlannerCommand(argv: string[]): Promise<number> {
  return runCommand('planner', plannerOptions, argv, serve);
}

async function serve(values: PlannerValues, logger: Logger): Promise<number> {
  // The config's own checks first (they name the field), then what the command cannot go without.
  const config = plannerConfigFrom(values);
  const prometheus = required(values, 'prometheus');
  const deployments = {
    prefill: required(values, 'prefill-deployment'),
    decode: required(values, 'decode-deployment'),
  };
  const kubeConfig = new KubeConfig();
  if (values.kubeconfig !== null) kubeConfig.loadFromFile(values.kubeconfig);
  else kubeConfig.loadFromDefault();
  const namespace = values.namespace ?? (await ownNamespace()) ?? 'default';
  const scaler = await KubernetesScaler.start({ kubeConfig, namespace, deployments, logger });
  const metrics = new PlannerMetrics();
  const server = await startMetricsServer(metrics.registry, {
    host: values['metrics-host'],
    port: values['metrics-port'],
  });
  const loop = new PlannerLoop({
    planner: new Planner(config),
    signals: new PrometheusSignals({
      url: prometheus,
      window: values.window,
      model: values.model,
      selector: values.selector ?? '',
      timeoutMs: 5000,
    }),
    scaler: values['dry-run'] ? new ReadOnlyScaler(scaler) : scaler,
    metrics,
    logger,
  });
  const intervalMs = values['interval-s'] * 1000;
  logger.info('planner started', {
    namespace,
    metricsPort: server.port,
    intervalMs,
    dryRun: values['dry-run'],
    config,
  });
  let stopping = false;
  const stopped = untilSignal(logger).then((signal) => {
    stopping = true;
    logger.info('stopping', { signal });
  });
  while (!stopping) {
    await loop.tick(Date.now() / 1000);
    await Promise.race([stopped, new Promise((r) => setTimeout(r, intervalMs).unref())]);
  }
  await scaler.close();
  await server.close();
  metrics.close();
  return 0;
}
