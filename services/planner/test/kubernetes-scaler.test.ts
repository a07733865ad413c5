// The Kubernetes scaler against a fake API server that speaks the real protocol: scale reads and
// writes through the Scale subresource, the pod informer's list + watch, victims marked with the
// lowest pod-deletion-cost and drained before they disappear.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { Logger, UnavailableError } from '@tandem/common';
import { deletionCostAnnotation, KubernetesScaler } from '../src/kubernetes-scaler.ts';
import { FakeKubeApi } from './fake-kube-api.ts';

const logger = new Logger({ level: 'error' });
let api: FakeKubeApi;
let kubeConfig: KubeConfig;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

before(async () => {
  api = await FakeKubeApi.start();
  const labels = (component: string) => ({
    'app.kubernetes.io/name': 'tandem',
    'app.kubernetes.io/component': component,
  });
  api.addDeployment({
    namespace: 'llm',
    name: 'tandem-prefill',
    replicas: 2,
    labels: labels('prefill'),
    readyAfterMs: 50,
    drainMs: 400,
  });
  api.addDeployment({
    namespace: 'llm',
    name: 'tandem-decode',
    replicas: 3,
    labels: labels('decode'),
    readyAfterMs: 50,
    drainMs: 400,
  });
  kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(api.kubeconfig());
});

after(async () => {
  await api.close();
});

test('reads both pools through the Scale subresource and the pod informer', async () => {
  const scaler = await KubernetesScaler.start({
    kubeConfig,
    namespace: 'llm',
    deployments: { prefill: 'tandem-prefill', decode: 'tandem-decode' },
    logger,
  });
  try {
    await until('pods ready', async () => (await scaler.read('decode')).ready === 3);
    assert.deepEqual(await scaler.read('prefill'), { desired: 2, current: 2, ready: 2, terminating: 0 });
    assert.deepEqual(await scaler.read('decode'), { desired: 3, current: 3, ready: 3, terminating: 0 });
    const paths = api.requests.map((r) => `${r.method} ${r.path.split('?')[0]}`);
    assert.ok(paths.includes('GET /apis/apps/v1/namespaces/llm/deployments/tandem-prefill/scale'));
    assert.ok(paths.includes('GET /api/v1/namespaces/llm/pods'), 'the informer lists pods');
    const watch = api.requests.find((r) => r.path.includes('watch=true'));
    assert.ok(watch, 'the informer watches pods');
    assert.match(
      watch.path,
      /labelSelector=app\.kubernetes\.io%2Fname%3Dtandem%2Capp\.kubernetes\.io%2Fcomponent%3D(prefill|decode)/,
    );
  } finally {
    await scaler.close();
  }
});

test('scales up with a JSON patch of spec.replicas; the watch brings the new pods', async () => {
  const scaler = await KubernetesScaler.start({
    kubeConfig,
    namespace: 'llm',
    deployments: { prefill: 'tandem-prefill', decode: 'tandem-decode' },
    logger,
  });
  try {
    await scaler.scale('decode', 5, []);
    const write = api.requests.findLast((r) => r.path.endsWith('/deployments/tandem-decode/scale'));
    assert.equal(write?.method, 'PATCH');
    assert.equal(write?.contentType, 'application/json-patch+json');
    assert.deepEqual(write?.body, [{ op: 'replace', path: '/spec/replicas', value: 5 }]);
    assert.equal(api.spec('llm', 'tandem-decode'), 5);
    await until('5 decode pods seen by the watch', async () => (await scaler.read('decode')).current === 5);
    const starting = await scaler.read('decode');
    assert.ok(starting.ready < 5, 'new pods start unready');
    await until('5 ready', async () => (await scaler.read('decode')).ready === 5);
    assert.deepEqual(await scaler.read('decode'), { desired: 5, current: 5, ready: 5, terminating: 0 });
  } finally {
    await scaler.close();
  }
});

test('scales down by removing the chosen victim, which drains before it is gone', async () => {
  const scaler = await KubernetesScaler.start({
    kubeConfig,
    namespace: 'llm',
    deployments: { prefill: 'tandem-prefill', decode: 'tandem-decode' },
    logger,
  });
  try {
    await until('decode pods ready', () =>
      api.pods('llm', 'tandem-decode').every((p) => (p.status as { phase: string }).phase === 'Running'),
    );
    const before = scaler.pods('decode').alive.sort();
    // Neither the newest nor the oldest: the ReplicaSet would not pick it without the annotation.
    const victim = before[2] ?? '';
    const desired = (await scaler.read('decode')).desired;
    await scaler.scale('decode', desired - 1, [victim, 'not-a-pod']);
    const mark = api.requests.find((r) => r.method === 'PATCH' && r.path.endsWith(`/pods/${victim}`));
    assert.equal(mark?.contentType, 'application/merge-patch+json');
    assert.deepEqual(mark?.body, { metadata: { annotations: { [deletionCostAnnotation]: '-100000' } } });
    assert.ok(!api.requests.some((r) => r.path.endsWith('/pods/not-a-pod')), 'unknown victims are skipped');
    await until('the victim terminating', () => scaler.pods('decode').terminating.includes(victim));
    assert.deepEqual(await scaler.read('decode'), {
      desired: desired - 1,
      current: desired - 1,
      ready: desired - 1,
      terminating: 1,
    });
    assert.deepEqual(
      scaler.pods('decode').alive.sort(),
      before.filter((p) => p !== victim),
    );
    await until('the victim gone after draining', () => !scaler.pods('decode').terminating.includes(victim));
    assert.deepEqual(await scaler.read('decode'), {
      desired: desired - 1,
      current: desired - 1,
      ready: desired - 1,
      terminating: 0,
    });
  } finally {
    await scaler.close();
  }
});

test('a missing Deployment fails at start with the name in the error', async () => {
  await assert.rejects(
    KubernetesScaler.start({
      kubeConfig,
      namespace: 'llm',
      deployments: { prefill: 'tandem-prefill', decode: 'no-such-decode' },
      logger,
    }),
    (error: unknown) =>
      error instanceof UnavailableError &&
      /deployments\/no-such-decode\/scale in llm \(HTTP 404\)/.test(error.message),
  );
});
