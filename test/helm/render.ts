// `helm template` of the chart into objects, and the accessors the chart tests share.
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { chartDir, helm } from './helm.ts';
import type { KubeObject } from './kube-validate.ts';

export function render(args: string[]): KubeObject[] {
  const run = helm(['template', 'tandem', chartDir, '--namespace', 'llm', ...args]);
  assert.equal(run.status, 0, run.stderr);
  return parseAllDocuments(run.stdout)
    .map((doc) => doc.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: Array<{ name: string; containerPort: number }>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  readinessProbe?: { exec?: { command: string[] } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
}

export interface Volume {
  name: string;
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  [key: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  terminationGracePeriodSeconds?: number;
  serviceAccountName?: string;
}

export function podSpecOf(object: KubeObject): PodSpec | null {
  if (object.kind === 'Pod') return object.spec as PodSpec;
  const template = (object.spec as { template?: { spec: PodSpec } } | undefined)?.template;
  return template?.spec ?? null;
}

export function find(objects: KubeObject[], kind: string, name: string): KubeObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `${kind} ${name} is rendered`);
  return found;
}

export function mainContainer(objects: KubeObject[], deployment: string): Container {
  const container = podSpecOf(find(objects, 'Deployment', deployment))?.containers[0];
  assert.ok(container, `${deployment} has a container`);
  return container;
}

/** The value of a flag in an argument list, or null. */
export function flagValue(args: readonly string[], flag: string): string | null {
  const i = args.indexOf(flag);
  return i < 0 ? null : (args[i + 1] ?? null);
}
