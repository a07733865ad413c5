// `tandem planner`'s options, declared once (common/options.ts): flags, environment, defaults, and
// the PlannerConfig they make (validated by config.ts, which names the first bad field).
import { defineOptions, logLevelOption, type OptionValues } from '@tandem/common';
import {
  defaultPlannerConfig as d,
  type PlannerConfig,
  parseDecodeProfile,
  validatePlannerConfig,
} from './config.ts';

export const plannerOptions = defineOptions(
  'planner',
  '--prometheus URL --prefill-deployment NAME --decode-deployment NAME [options]',
  {
    prometheus: {
      type: 'string',
      default: null,
      valueName: 'URL',
      doc: 'Prometheus base URL (signals: router p90s, token rates, worker gauges) (required)',
    },
    namespace: {
      type: 'string',
      default: null,
      valueName: 'NS',
      doc: "namespace of the two Deployments (default: the pod's own, else default)",
    },
    'prefill-deployment': {
      type: 'string',
      default: null,
      valueName: 'NAME',
      doc: "the prefill pool's Deployment (required)",
    },
    'decode-deployment': {
      type: 'string',
      default: null,
      valueName: 'NAME',
      doc: "the decode pool's Deployment (required)",
    },
    kubeconfig: {
      type: 'string',
      default: null,
      valueName: 'PATH',
      doc: 'default: the in-cluster service account, else $KUBECONFIG / ~/.kube/config',
    },
    model: {
      type: 'string',
      default: null,
      valueName: 'NAME',
      doc: 'served model name to filter the worker gauges by (default all)',
    },
    selector: {
      type: 'string',
      default: null,
      valueName: 'MATCHERS',
      doc: 'extra PromQL label matchers on every series, e.g. namespace="llm"',
    },
    window: {
      type: 'string',
      default: '1m',
      valueName: 'DURATION',
      doc: 'rate / quantile window',
    },
    'interval-s': { type: 'number', default: 15, min: 0.1, doc: 'seconds between ticks' },
    'slo-ttft-ms': {
      type: 'number',
      default: d.sloTtftS * 1000,
      doc: 'time-to-first-token p90 objective',
    },
    'slo-itl-ms': { type: 'number', default: d.sloItlS * 1000, doc: 'inter-token latency p90 objective' },
    'prefill-min': { type: 'int', default: d.prefill.min, doc: 'prefill pool floor' },
    'prefill-max': { type: 'int', default: d.prefill.max, doc: 'prefill pool ceiling' },
    'decode-min': { type: 'int', default: d.decode.min, doc: 'decode pool floor' },
    'decode-max': { type: 'int', default: d.decode.max, doc: 'decode pool ceiling' },
    'max-total': {
      type: 'int',
      default: d.maxTotalReplicas,
      doc: 'prefill + decode replicas at most (default none)',
    },
    'ratio-min': { type: 'number', default: d.ratioMin, doc: 'prefill:decode replica ratio, lowest' },
    'ratio-max': { type: 'number', default: d.ratioMax, doc: 'prefill:decode replica ratio, highest' },
    'prefill-tokens-per-s': {
      type: 'number',
      default: d.prefillTokensPerReplicaS,
      doc: 'uncached prompt tokens/s one prefill replica computes',
    },
    'decode-profile': {
      type: 'string',
      default: d.decodeProfile.map((p) => `${p.context}:${p.tokensPerS}`).join(','),
      valueName: 'C:T,...',
      doc: 'completion tokens/s (T) one decode replica streams within the ITL SLO at mean context C, e.g. 512:8226,4096:659',
    },
    'kv-tokens-per-replica': {
      type: 'int',
      default: d.kvTokensPerReplica,
      doc: 'KV tokens a decode replica holds (pages x page size): lets the planner read the mean context off KV usage (default none: the lowest capacity)',
    },
    'decode-base-step-ms': {
      type: 'number',
      default: d.decodeBaseStepS === null ? null : d.decodeBaseStepS * 1000,
      doc: 'decode step time at batch 1: calibrates decode capacity online from ITL vs load (default none: the profile only)',
    },
    'target-utilization': {
      type: 'number',
      default: d.targetUtilization,
      doc: 'fraction of that capacity to plan for',
    },
    'kv-usage-target': { type: 'number', default: d.kvUsageTarget, doc: 'decode KV occupancy to plan for' },
    'up-cooldown-s': {
      type: 'number',
      default: d.upCooldownS,
      doc: 'after a scale event, wait before growing a pool again',
    },
    'down-cooldown-s': { type: 'number', default: d.downCooldownS, doc: '... before shrinking it' },
    'down-stabilization-s': {
      type: 'number',
      default: d.downStabilizationS,
      doc: 'shrink only to the highest recommendation of this window',
    },
    'metrics-host': {
      type: 'string',
      default: '0.0.0.0',
      valueName: 'ADDR',
      doc: 'listen address of /metrics and /healthz',
    },
    'metrics-port': {
      type: 'int',
      default: 9400,
      min: 0,
      max: 65535,
      doc: '/metrics and /healthz port (0 picks a free one)',
    },
    'dry-run': { type: 'boolean', default: false, doc: 'decide and log, never scale' },
    ...logLevelOption,
  },
);

export type PlannerValues = OptionValues<typeof plannerOptions.specs>;

/** The PlannerConfig the options describe (throws ConfigError naming the first bad field). */
export function plannerConfigFrom(values: PlannerValues): PlannerConfig {
  const baseStepMs = values['decode-base-step-ms'];
  return validatePlannerConfig({
    ...d,
    sloTtftS: values['slo-ttft-ms'] / 1000,
    sloItlS: values['slo-itl-ms'] / 1000,
    prefill: { min: values['prefill-min'], max: values['prefill-max'] },
    decode: { min: values['decode-min'], max: values['decode-max'] },
    maxTotalReplicas: values['max-total'],
    ratioMin: values['ratio-min'],
    ratioMax: values['ratio-max'],
    prefillTokensPerReplicaS: values['prefill-tokens-per-s'],
    decodeProfile: parseDecodeProfile(values['decode-profile']),
    decodeBaseStepS: baseStepMs === null ? null : baseStepMs / 1000,
    kvTokensPerReplica: values['kv-tokens-per-replica'],
    targetUtilization: values['target-utilization'],
    kvUsageTarget: values['kv-usage-target'],
    upCooldownS: values['up-cooldown-s'],
    downCooldownS: values['down-cooldown-s'],
    downStabilizationS: values['down-stabilization-s'],
  });
}
