// `tandem planner`: flags -> Prometheus signals + Kubernetes scaler + decision loop, a tick every
// --interval-s until SIGTERM / SIGINT, with its metrics on --metrics-port.
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, envString, isLogLevel, Logger, TandemError } from '@tandem/common';
import {
  defaultPlannerConfig,
  type PlannerConfig,
  parseDecodeProfile,
  validatePlannerConfig,
} from './config.ts';
import { Planner } from './decide.ts';
import { KubernetesScaler } from './kubernetes-scaler.ts';
import { PlannerLoop } from './planner-loop.ts';
import { PlannerMetrics, serveMetrics } from './planner-metrics.ts';
import { PrometheusSignals } from './prometheus-signals.ts';
import type { PoolName, PoolState, Scaler } from './types.ts';

const d = defaultPlannerConfig;
export const plannerUsage = `usage: tandem planner --prometheus URL --prefill-deployment NAME --decode-deployment NAME [options]

  --prometheus URL             Prometheus base URL (signals: router p90s, token rates, worker gauges)
  --namespace NS               namespace of the two Deployments (default: the pod's own, else default)
  --prefill-deployment NAME    the prefill pool's Deployment
  --decode-deployment NAME     the decode pool's Deployment
  --kubeconfig PATH            default: in-cluster service account, else $KUBECONFIG / ~/.kube/config
  --model NAME                 served model name to filter worker gauges by (default all)
  --selector MATCHERS          extra PromQL label matchers on every series, e.g. namespace="llm"
  --window DURATION            rate / quantile window (default 1m)
  --interval-s N               seconds between ticks (default 15)
  --slo-ttft-ms N              time-to-first-token p90 objective (default ${d.sloTtftS * 1000})
  --slo-itl-ms N               inter-token latency p90 objective (default ${d.sloItlS * 1000})
  --prefill-min N, --prefill-max N   prefill pool bounds (default ${d.prefill.min}, ${d.prefill.max})
  --decode-min N, --decode-max N     decode pool bounds (default ${d.decode.min}, ${d.decode.max})
  --max-total N                prefill + decode replicas at most (default none)
  --ratio-min X, --ratio-max X prefill:decode replica ratio bounds (default ${d.ratioMin}, ${d.ratioMax})
  --prefill-tokens-per-s N     uncached prompt tokens/s one prefill replica computes (default ${d.prefillTokensPerReplicaS})
  --decode-profile C:T,...     completion tokens/s (T) one decode replica streams within the ITL SLO at
                               mean context C, e.g. 512:8226,4096:659 (default ${d.decodeProfile.map((p) => `${p.context}:${p.tokensPerS}`).join(',')})
  --kv-tokens-per-replica N    KV tokens a decode replica holds (pages x page size): lets the planner
                               read the mean context off KV usage (default none: lowest capacity)
  --decode-base-step-ms N      decode step time at batch 1: calibrates decode capacity online from
                               ITL vs load (default none: the profile only)
  --target-utilization X       fraction of that capacity to plan for (default ${d.targetUtilization})
  --kv-usage-target X          decode KV occupancy to plan for (default ${d.kvUsageTarget})
  --up-cooldown-s N            after a scale event, wait before growing a pool again (default ${d.upCooldownS})
  --down-cooldown-s N          ... before shrinking it (default ${d.downCooldownS})
  --down-stabilization-s N     shrink only to the highest recommendation of this window (default ${d.downStabilizationS})
  --metrics-host ADDR          listen address of /metrics (default 0.0.0.0)
  --metrics-port N             /metrics port (default 9400; 0 picks a free one)
  --dry-run                    decide and log, never scale
  --log-level debug|info|warn|error
`;

const options = {
  prometheus: { type: 'string' },
  namespace: { type: 'string' },
  'prefill-deployment': { type: 'string' },
  'decode-deployment': { type: 'string' },
  kubeconfig: { type: 'string' },
  model: { type: 'string' },
  selector: { type: 'string' },
  window: { type: 'string', default: '1m' },
  'interval-s': { type: 'string', default: '15' },
  'slo-ttft-ms': { type: 'string' },
  'slo-itl-ms': { type: 'string' },
  'prefill-min': { type: 'string' },
  'prefill-max': { type: 'string' },
  'decode-min': { type: 'string' },
  'decode-max': { type: 'string' },
  'max-total': { type: 'string' },
  'ratio-min': { type: 'string' },
  'ratio-max': { type: 'string' },
  'prefill-tokens-per-s': { type: 'string' },
  'decode-profile': { type: 'string' },
  'kv-tokens-per-replica': { type: 'string' },
  'decode-base-step-ms': { type: 'string' },
  'target-utilization': { type: 'string' },
  'kv-usage-target': { type: 'string' },
  'up-cooldown-s': { type: 'string' },
  'down-cooldown-s': { type: 'string' },
  'down-stabilization-s': { type: 'string' },
  'metrics-host': { type: 'string', default: '0.0.0.0' },
  'metrics-port': { type: 'string', default: '9400' },
  'dry-run': { type: 'boolean', default: false },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The flags `tandem planner` accepts (the chart's flag test reads them). */
export const plannerFlags: readonly string[] = Object.keys(options);

function parse(argv: string[]) {
  return parseArgs({ args: argv, strict: true, allowPositionals: false, options });
}

type Values = ReturnType<typeof parse>['values'];

function number(values: Values, flag: keyof Values, fallback: number, integer = false): number {
  const text = values[flag];
  if (typeof text !== 'string') return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new ConfigError(`--${flag} must be ${integer ? 'an integer' : 'a number'}, got '${text}'`, {
      param: `--${flag}`,
    });
  }
  return value;
}

export function plannerConfigFromArgv(argv: string[]): PlannerConfig {
  const values = parse(argv).values;
  const maxTotal = values['max-total'];
  return validatePlannerConfig({
    ...d,
    sloTtftS: number(values, 'slo-ttft-ms', d.sloTtftS * 1000) / 1000,
    sloItlS: number(values, 'slo-itl-ms', d.sloItlS * 1000) / 1000,
    prefill: {
      min: number(values, 'prefill-min', d.prefill.min, true),
      max: number(values, 'prefill-max', d.prefill.max, true),
    },
    decode: {
      min: number(values, 'decode-min', d.decode.min, true),
      max: number(values, 'decode-max', d.decode.max, true),
    },
    maxTotalReplicas: maxTotal === undefined ? null : number(values, 'max-total', 0, true),
    ratioMin: number(values, 'ratio-min', d.ratioMin),
    ratioMax: number(values, 'ratio-max', d.ratioMax),
    prefillTokensPerReplicaS: number(values, 'prefill-tokens-per-s', d.prefillTokensPerReplicaS),
    decodeProfile:
      values['decode-profile'] === undefined ? d.decodeProfile : parseDecodeProfile(values['decode-profile']),
    decodeBaseStepS:
      values['decode-base-step-ms'] === undefined ? null : number(values, 'decode-base-step-ms', 0) / 1000,
    kvTokensPerReplica:
      values['kv-tokens-per-replica'] === undefined ? null : number(values, 'kv-tokens-per-replica', 0, true),
    targetUtilization: number(values, 'target-utilization', d.targetUtilization),
    kvUsageTarget: number(values, 'kv-usage-target', d.kvUsageTarget),
    upCooldownS: number(values, 'up-cooldown-s', d.upCooldownS),
    downCooldownS: number(values, 'down-cooldown-s', d.downCooldownS),
    downStabilizationS: number(values, 'down-stabilization-s', d.downStabilizationS),
  });
}

/** The namespace this pod runs in, from its service account, else null. */
async function ownNamespace(): Promise<string | null> {
  const { readFile } = await import('node:fs/promises');
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

export async function runPlannerCommand(argv: string[]): Promise<number> {
  let values: Values;
  let config: PlannerConfig;
  try {
    values = parse(argv).values;
    if (values.help === true) {
      process.stdout.write(plannerUsage);
      return 0;
    }
    config = plannerConfigFromArgv(argv);
    for (const flag of ['prometheus', 'prefill-deployment', 'decode-deployment'] as const) {
      if (values[flag] === undefined) throw new ConfigError(`--${flag} is required`, { param: `--${flag}` });
    }
  } catch (error) {
    process.stderr.write(
      `tandem planner: ${error instanceof Error ? error.message : String(error)}\n\n${plannerUsage}`,
    );
    return 2;
  }
  const level = values['log-level'] ?? envString('LOG_LEVEL', 'info');
  const logger = new Logger({ level: isLogLevel(level) ? level : 'info', fields: { service: 'planner' } });
  const kubeConfig = new KubeConfig();
  if (values.kubeconfig !== undefined) kubeConfig.loadFromFile(values.kubeconfig);
  else kubeConfig.loadFromDefault();
  const namespace = values.namespace ?? (await ownNamespace()) ?? 'default';
  const metrics = new PlannerMetrics();
  let scaler: KubernetesScaler;
  try {
    scaler = await KubernetesScaler.start({
      kubeConfig,
      namespace,
      deployments: { prefill: values['prefill-deployment'] ?? '', decode: values['decode-deployment'] ?? '' },
      logger,
    });
  } catch (error) {
    process.stderr.write(
      `tandem planner: ${error instanceof TandemError ? `${error.name}: ` : ''}${String((error as Error).message)}\n`,
    );
    return 1;
  }
  const { server, port } = await serveMetrics(
    metrics,
    values['metrics-host'] ?? '0.0.0.0',
    number(values, 'metrics-port', 9400, true),
  );
  const loop = new PlannerLoop({
    planner: new Planner(config),
    signals: new PrometheusSignals({
      url: values.prometheus ?? '',
      window: values.window ?? '1m',
      model: values.model ?? null,
      selector: values.selector ?? '',
      timeoutMs: 5000,
    }),
    scaler: values['dry-run'] === true ? new ReadOnlyScaler(scaler) : scaler,
    metrics,
    logger,
  });
  const intervalMs = number(values, 'interval-s', 15) * 1000;
  logger.info('planner started', {
    namespace,
    metricsPort: port,
    intervalMs,
    dryRun: values['dry-run'],
    config,
  });
  let stopping = false;
  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => {
      stopping = true;
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  while (!stopping) {
    await loop.tick(Date.now() / 1000);
    await Promise.race([stopped, new Promise((r) => setTimeout(r, intervalMs).unref())]);
  }
  await scaler.close();
  server.close();
  return 0;
}
