// The chart's cluster security (docs/protocol.md, "Cluster security"): a generated cluster secret
// mounted for every router and worker, gRPC mTLS from cert-manager or a given Secret, NATS and
// Redis credentials in NATS_URL / REDIS_URL from Secrets, client API keys from a Secret, the admin
// key shared by the routers and the ServiceMonitor; and the workers' drain time inside the pod's
// grace period. The variable names are the CLI's own: chart.test.ts runs every rendered command
// with its environment through the real parsers.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { chartDir, helm } from './helm.ts';
import type { KubeObject } from './kube-validate.ts';
import { type Container, type EnvVar, find, flagValue, type PodSpec, podSpecOf, render } from './render.ts';

const tandemWorkloads = (objects: KubeObject[]) =>
  objects.filter(
    (o) =>
      o.kind === 'Deployment' &&
      ['router', 'prefill', 'decode', 'unified'].includes(
        o.metadata.labels?.['app.kubernetes.io/component'] ?? '',
      ),
  );

function envOf(container: Container, name: string): EnvVar | undefined {
  return container.env?.find((e) => e.name === name);
}

/** The Secret name and key a file path in the container comes from (through its volume mount). */
function fileSource(pod: PodSpec, container: Container, path: string): { secret: string; key: string } {
  const mount = container.volumeMounts?.find((m) => path.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `${path} is in a mounted volume`);
  assert.equal(mount.readOnly, true, `${mount.name} is read-only`);
  const volume = pod.volumes?.find((v) => v.name === mount.name);
  const item = volume?.secret?.items?.find((i) => i.path === path.slice(mount.mountPath.length + 1));
  assert.ok(volume?.secret && item, `${path} is a key of a Secret`);
  return { secret: volume.secret.secretName, key: item.key };
}

describe('defaults: a generated cluster secret, passwords for the chart NATS and Redis, an admin key', () => {
  const objects = render(['--set', 'monitoring.serviceMonitor.enabled=true']);
  const secret = find(objects, 'Secret', 'tandem-secrets') as KubeObject & { data: Record<string, string> };

  test('one Secret holds the generated values: 48 random characters each, base64', () => {
    assert.deepEqual(Object.keys(secret.data).sort(), [
      'admin-key',
      'cluster-secret',
      'nats-password',
      'redis-password',
    ]);
    const values = Object.values(secret.data).map((v) => Buffer.from(v, 'base64').toString());
    for (const value of values) assert.match(value, /^[A-Za-z0-9]{48}$/);
    assert.equal(new Set(values).size, values.length, 'each its own');
  });

  test('every router and worker reads the cluster secret from a file of that Secret', () => {
    const workloads = tandemWorkloads(objects);
    assert.equal(workloads.length, 3);
    for (const workload of workloads) {
      const pod = podSpecOf(workload);
      const container = pod?.containers[0];
      assert.ok(pod && container);
      const file = envOf(container, 'TANDEM_CLUSTER_SECRET_FILE')?.value;
      assert.ok(file, workload.metadata.name);
      assert.deepEqual(fileSource(pod, container, file), { secret: 'tandem-secrets', key: 'cluster-secret' });
      assert.equal(flagValue(container.args ?? [], '--cluster-secret'), null, 'never in the flags');
    }
  });

  test("NATS and Redis require the generated passwords, and the processes' URLs carry them", () => {
    const nats = podSpecOf(find(objects, 'StatefulSet', 'tandem-nats'))?.containers[0];
    const redis = podSpecOf(find(objects, 'Deployment', 'tandem-redis'))?.containers[0];
    assert.ok(nats && redis);
    assert.ok(nats.args?.includes('--user=tandem') && nats.args.includes('--pass=$(NATS_PASSWORD)'));
    assert.equal(flagValue(redis.args ?? [], '--requirepass'), '$(REDIS_PASSWORD)');
    const ref = (c: Container, name: string) => envOf(c, name)?.valueFrom?.secretKeyRef;
    assert.deepEqual(ref(nats, 'NATS_PASSWORD'), { name: 'tandem-secrets', key: 'nats-password' });
    assert.deepEqual(ref(redis, 'REDIS_PASSWORD'), { name: 'tandem-secrets', key: 'redis-password' });
    assert.deepEqual(
      ref(redis, 'REDISCLI_AUTH'),
      ref(redis, 'REDIS_PASSWORD'),
      'the readiness probe authenticates',
    );
    for (const workload of tandemWorkloads(objects)) {
      const container = podSpecOf(workload)?.containers[0];
      assert.ok(container);
      assert.deepEqual(ref(container, 'NATS_PASSWORD'), ref(nats, 'NATS_PASSWORD'));
      assert.deepEqual(ref(container, 'REDIS_PASSWORD'), ref(redis, 'REDIS_PASSWORD'));
      assert.equal(envOf(container, 'NATS_URL')?.value, 'nats://tandem:$(NATS_PASSWORD)@tandem-nats:4222');
      assert.equal(envOf(container, 'REDIS_URL')?.value, 'redis://:$(REDIS_PASSWORD)@tandem-redis:6379');
      // Kubernetes expands $(VAR) only from variables listed before it.
      const names = (container.env ?? []).map((e) => e.name);
      assert.ok(names.indexOf('NATS_PASSWORD') < names.indexOf('NATS_URL'));
      assert.ok(names.indexOf('REDIS_PASSWORD') < names.indexOf('REDIS_URL'));
    }
  });

  test("the routers' /metrics need the admin key, which the ServiceMonitor sends as its bearer token", () => {
    const router = podSpecOf(find(objects, 'Deployment', 'tandem-router'))?.containers[0];
    assert.ok(router);
    assert.equal(flagValue(router.args ?? [], '--admin-access'), 'key');
    const adminKey = envOf(router, 'TANDEM_ADMIN_KEYS')?.valueFrom?.secretKeyRef;
    assert.deepEqual(adminKey, { name: 'tandem-secrets', key: 'admin-key' });
    const monitor = find(objects, 'ServiceMonitor', 'tandem') as KubeObject & {
      spec: { endpoints: Array<{ port: string; authorization?: { type: string; credentials: unknown } }> };
    };
    const routerEndpoint = monitor.spec.endpoints.find((e) => e.port === 'http');
    assert.deepEqual(routerEndpoint?.authorization, { type: 'Bearer', credentials: adminKey });
    // Workers and the planner serve their metrics without a key.
    assert.equal(monitor.spec.endpoints.find((e) => e.port === 'metrics')?.authorization, undefined);
  });

  test('no client keys unless given: the /v1 routes are open', () => {
    const router = podSpecOf(find(objects, 'Deployment', 'tandem-router'))?.containers[0];
    assert.equal(router && envOf(router, 'TANDEM_API_KEY_FILE'), undefined);
  });
});

describe('security turned down', () => {
  test('adminAccess open: no admin key anywhere; no cluster secret when it is off; plain NATS and Redis', () => {
    const objects = render([
      ...['--set', 'router.adminAccess=open', '--set', 'monitoring.serviceMonitor.enabled=true'],
      ...[
        '--set',
        'security.clusterSecret.enabled=false',
        '--set',
        'nats.auth=false',
        '--set',
        'redis.auth=false',
      ],
    ]);
    assert.ok(!objects.some((o) => o.kind === 'Secret'), 'nothing to generate');
    const router = podSpecOf(find(objects, 'Deployment', 'tandem-router'))?.containers[0];
    assert.ok(router);
    assert.equal(flagValue(router.args ?? [], '--admin-access'), 'open');
    assert.equal(envOf(router, 'TANDEM_ADMIN_KEYS'), undefined);
    assert.equal(envOf(router, 'TANDEM_CLUSTER_SECRET_FILE'), undefined);
    assert.equal(envOf(router, 'NATS_URL')?.value, 'nats://tandem-nats:4222');
    const monitor = find(objects, 'ServiceMonitor', 'tandem') as KubeObject & {
      spec: { endpoints: Array<{ authorization?: unknown }> };
    };
    assert.ok(monitor.spec.endpoints.every((e) => e.authorization === undefined));
  });

  test('adminAccess off with a ServiceMonitor: refused, with the reason', () => {
    const run = helm([
      'template',
      'tandem',
      chartDir,
      ...['--set', 'router.adminAccess=off', '--set', 'monitoring.serviceMonitor.enabled=true'],
    ]);
    assert.notEqual(run.status, 0);
    assert.match(
      run.stderr,
      /serviceMonitor.enabled needs the routers' \/metrics, which router.adminAccess off removes/,
    );
  });
});

describe('gRPC mTLS', () => {
  test('from cert-manager: one Certificate for serverAuth and clientAuth, mounted by every router and worker', () => {
    const objects = render(['-f', join(chartDir, 'ci', 'pd-2p-6d.yaml')]);
    const certificate = find(objects, 'Certificate', 'tandem-grpc') as KubeObject & {
      spec: { secretName: string; dnsNames: string[]; usages: string[]; issuerRef: Record<string, string> };
    };
    assert.deepEqual(certificate.spec.dnsNames, ['tandem-grpc.llm.svc']);
    assert.ok(
      certificate.spec.usages.includes('server auth') && certificate.spec.usages.includes('client auth'),
    );
    assert.deepEqual(certificate.spec.issuerRef, {
      name: 'cluster-ca',
      kind: 'ClusterIssuer',
      group: 'cert-manager.io',
    });
    const workloads = tandemWorkloads(objects);
    assert.equal(workloads.length, 3);
    for (const workload of workloads) {
      const pod = podSpecOf(workload);
      const container = pod?.containers[0];
      assert.ok(pod && container);
      const files = { TANDEM_TLS_CERT: 'tls.crt', TANDEM_TLS_KEY: 'tls.key', TANDEM_TLS_CA: 'ca.crt' };
      for (const [name, key] of Object.entries(files)) {
        const path: string | undefined = envOf(container, name)?.value;
        assert.ok(path, `${workload.metadata.name}: ${name}`);
        assert.deepEqual(fileSource(pod, container, path), { secret: certificate.spec.secretName, key });
      }
      // Pods are dialed by IP: clients check the certificate's name instead.
      assert.equal(envOf(container, 'TANDEM_TLS_SERVER_NAME')?.value, certificate.spec.dnsNames[0]);
    }
  });

  test('from your Secrets: TLS, cluster secret, client keys and admin key; nothing generated', () => {
    const objects = render(['-f', join(chartDir, 'ci', 'external.yaml')]);
    assert.ok(!objects.some((o) => o.kind === 'Certificate' || o.kind === 'Secret'));
    for (const workload of tandemWorkloads(objects)) {
      const pod = podSpecOf(workload);
      const container = pod?.containers[0];
      assert.ok(pod && container);
      assert.equal(
        fileSource(pod, container, envOf(container, 'TANDEM_TLS_CERT')?.value ?? '').secret,
        'tandem-grpc-tls',
      );
      assert.equal(envOf(container, 'TANDEM_TLS_SERVER_NAME')?.value, 'tandem.llm.internal');
      assert.deepEqual(
        fileSource(pod, container, envOf(container, 'TANDEM_CLUSTER_SECRET_FILE')?.value ?? ''),
        {
          secret: 'tandem-cluster',
          key: 'secret',
        },
      );
    }
    const routerPod = podSpecOf(find(objects, 'Deployment', 'tandem-router'));
    const router = routerPod?.containers[0];
    assert.ok(routerPod && router);
    assert.deepEqual(fileSource(routerPod, router, envOf(router, 'TANDEM_API_KEY_FILE')?.value ?? ''), {
      secret: 'tandem-api-keys',
      key: 'api-keys',
    });
    const adminKey = { name: 'tandem-admin', key: 'token' };
    assert.deepEqual(envOf(router, 'TANDEM_ADMIN_KEYS')?.valueFrom?.secretKeyRef, adminKey);
    const monitor = find(objects, 'ServiceMonitor', 'tandem') as KubeObject & {
      spec: { endpoints: Array<{ port: string; authorization?: { credentials: unknown } }> };
    };
    assert.deepEqual(
      monitor.spec.endpoints.find((e) => e.port === 'http')?.authorization?.credentials,
      adminKey,
    );
    // `helm test` sends one of the client keys.
    const testPod = objects.find((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test');
    assert.ok(testPod);
    const testSpec = podSpecOf(testPod);
    assert.equal(
      testSpec?.volumes?.find((v) => v.name === 'api-keys')?.secret?.secretName,
      'tandem-api-keys',
    );
    assert.match(testSpec?.containers[0]?.args?.[0] ?? '', /headers\.authorization = 'Bearer '/);
  });
});

describe('drain', () => {
  test("each pool's --drain-grace-ms ends 10 s before its terminationGracePeriodSeconds", () => {
    for (const file of ['pd-2p-6d.yaml', 'laptop-cpu.yaml', 'one-gpu.yaml']) {
      for (const workload of tandemWorkloads(render(['-f', join(chartDir, 'ci', file)]))) {
        const pod = podSpecOf(workload);
        const args = pod?.containers[0]?.args ?? [];
        if (args[0] !== 'worker') continue;
        const graceS = pod?.terminationGracePeriodSeconds ?? 0;
        assert.equal(
          Number(flagValue(args, '--drain-grace-ms')),
          (graceS - 10) * 1000,
          `${file}: ${workload.metadata.name}`,
        );
      }
    }
  });
});
