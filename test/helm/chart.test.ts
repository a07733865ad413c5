// The chart, checked offline with a real helm (v4): lint --strict, template for every values
// file in helm/tandem/ci/ (and the defaults), each rendered object validated against the
// Kubernetes OpenAPI schemas, every command line the chart writes accepted by the real CLI
// parsers, bad values rejected by values.schema.json with the path and the rule in the message.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { chartDir, helm, repoRoot } from './helm.ts';
import { type KubeObject, validateObject } from './kube-validate.ts';
import { type Container, find, mainContainer, podSpecOf, render } from './render.ts';

const valuesFiles = readdirSync(join(chartDir, 'ci'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const valueSets: Array<{ name: string; args: string[] }> = [
  { name: 'defaults', args: [] },
  ...valuesFiles.map((f) => ({ name: f, args: ['-f', join(chartDir, 'ci', f)] })),
];

describe('helm lint --strict', () => {
  for (const set of valueSets) {
    test(set.name, () => {
      const run = helm(['lint', '--strict', chartDir, ...set.args]);
      assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });
  }
});

describe('every rendered object validates against the Kubernetes OpenAPI schemas', () => {
  for (const set of valueSets) {
    test(set.name, async () => {
      const objects = render(set.args);
      assert.ok(objects.length >= 5, `rendered ${objects.length} objects`);
      for (const object of objects) await validateObject(object);
    });
  }

  test('the validator catches a broken object (the check can fail)', async () => {
    const [deployment] = render([]).filter((o) => o.kind === 'Deployment');
    assert.ok(deployment);
    const broken = structuredClone(deployment);
    (broken.spec as { replicas: unknown }).replicas = 'two';
    await assert.rejects(validateObject(broken), /Deployment .* is invalid/);
    await assert.rejects(
      validateObject({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }),
      /no schema for example.com\/v1 Widget/,
    );
  });
});

describe('every flag and environment variable the chart passes exists in the CLI', () => {
  /** $(VAR) as Kubernetes expands it from the container's earlier variables (secrets: a stand-in). */
  function expand(text: string, env: Record<string, string>): string {
    return text.replace(/\$\(([A-Z_][A-Z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole);
  }

  /** The container's environment as the process sees it: field refs and secrets as stand-ins. */
  function containerEnv(container: Container): Record<string, string> {
    const env: Record<string, string> = {};
    for (const variable of container.env ?? []) {
      const standIn = variable.valueFrom?.fieldRef !== undefined ? 'x' : 'secret';
      env[variable.name] = variable.value === undefined ? standIn : expand(variable.value, env);
    }
    return env;
  }

  /**
   * Runs the real command parser on the rendered arguments and environment; --help stops it after
   * parsing (which checks every value, from flags and from the environment).
   */
  function parses(
    command: string[],
    args: string[],
    env: Record<string, string>,
  ): { status: number; output: string } {
    const result = spawnSync(
      command[0] ?? '',
      [...command.slice(1), ...args.map((a) => expand(a, env)), '--help'],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 60_000,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      },
    );
    return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
  }

  /**
   * Variables nothing reads: neither the command (its usage names every variable it reads, as
   * [$NAME]) nor Kubernetes' $(NAME) expansion in the arguments or a later variable.
   */
  function unread(container: Container, usage: string): string[] {
    const referenced = JSON.stringify([
      container.args ?? [],
      (container.env ?? []).map((e) => e.value ?? ''),
    ]);
    return (container.env ?? [])
      .map((e) => e.name)
      .filter((name) => !new RegExp(`\\$${name}\\b`).test(usage) && !referenced.includes(`$(${name})`));
  }

  const tandem = [join(repoRoot, 'services', 'cli', 'bin', 'tandem')];
  const node = [process.execPath, '--disable-warning=ExperimentalWarning'];
  const seen = new Set<string>();
  const lines: Array<{ where: string; command: string[]; args: string[]; container: Container }> = [];
  for (const set of valueSets) {
    for (const object of render(set.args)) {
      const pod = podSpecOf(object);
      if (pod === null || object.metadata.annotations?.['helm.sh/hook'] === 'test') continue;
      for (const container of [...pod.containers, ...(pod.initContainers ?? [])]) {
        // tandem's images run `tandem` as the entrypoint; the downloader is a script of its own.
        const isTandem = container.command === undefined && /tandem-(router|worker)/.test(container.image);
        const isDownloader = container.command?.join(' ') === 'node /app/deploy/images/download-model.ts';
        if (!isTandem && !isDownloader) continue;
        const command = isTandem
          ? tandem
          : [...node, join(repoRoot, 'deploy', 'images', 'download-model.ts')];
        const args = container.args ?? [];
        const key = JSON.stringify([command, args, container.env]);
        if (!seen.has(key)) {
          seen.add(key);
          lines.push({
            where: `${set.name}: ${object.kind} ${object.metadata.name}/${container.name}`,
            command,
            args,
            container,
          });
        }
        // The workers' readiness probe is a script of the image too (run in the container's environment).
        const probe = container.readinessProbe?.exec?.command ?? [];
        if (
          probe[0] === 'node' &&
          probe[1] === '/app/deploy/images/worker-ready.ts' &&
          !seen.has(JSON.stringify([probe, container.env]))
        ) {
          seen.add(JSON.stringify([probe, container.env]));
          lines.push({
            where: `${set.name}: ${object.kind} ${object.metadata.name}/${container.name} readiness probe`,
            command: [...node, join(repoRoot, 'deploy', 'images', 'worker-ready.ts')],
            args: probe.slice(2),
            container,
          });
        }
      }
    }
  }

  test('the rendered command lines cover router, every worker role, the planner and the downloader', () => {
    const covered = new Set(
      lines.map((l) =>
        l.command === tandem
          ? `${l.args[0]}${l.args[0] === 'worker' ? `:${l.args[2]}` : ''}`
          : (l.command.at(-1)?.split('/').at(-1) ?? ''),
      ),
    );
    for (const expected of [
      'router',
      'worker:prefill',
      'worker:decode',
      'worker:unified',
      'planner',
      'download-model.ts',
      'worker-ready.ts',
    ]) {
      assert.ok(
        covered.has(expected),
        `some values file renders ${expected} (have ${[...covered].join(', ')})`,
      );
    }
  });

  for (const line of lines) {
    test(line.where, () => {
      const { status, output } = parses(line.command, line.args, containerEnv(line.container));
      assert.equal(status, 0, `${line.args.join(' ')}\n${output}`);
      assert.match(output, /usage:/);
      if (!line.where.endsWith('readiness probe'))
        assert.deepEqual(unread(line.container, output), [], 'variables the command does not read');
    });
  }

  test('an unknown flag, a bad value in the environment and an unread variable are caught (the checks can fail)', () => {
    const router = lines.find((l) => l.args[0] === 'router');
    assert.ok(router);
    const env = containerEnv(router.container);
    const flag = parses(router.command, [...router.args, '--no-such-flag', '1'], env);
    assert.equal(flag.status, 2, flag.output);
    assert.match(flag.output, /no-such-flag/);
    const bad = parses(
      router.command,
      router.args.filter((a, i, all) => a !== '--admin-access' && all[i - 1] !== '--admin-access'),
      {
        ...env,
        TANDEM_ADMIN_ACCESS: 'sometimes',
      },
    );
    assert.equal(bad.status, 2, bad.output);
    assert.match(bad.output, /TANDEM_ADMIN_ACCESS must be/);
    const { output } = parses(router.command, router.args, env);
    const withTypo = {
      ...router.container,
      env: [...(router.container.env ?? []), { name: 'TANDEM_API_KEYFILE', value: 'x' }],
    };
    assert.deepEqual(unread(withTypo, output), ['TANDEM_API_KEYFILE']);
  });
});

describe('values.schema.json rejects bad values with the path and the rule', () => {
  const cases: Array<{ what: string; set: string[]; message: RegExp }> = [
    {
      what: 'a negative replica count',
      set: ['workers.decode.replicas=-1'],
      message: /\/workers\/decode\/replicas.*minimum/s,
    },
    {
      what: 'an unknown model source',
      set: ['model.source=s3'],
      message: /\/model\/source.*(value must be one of|enum)/s,
    },
    {
      what: 'a PVC source without a claim',
      set: ['model.source=pvc'],
      message: /\/model\/pvc.*claimName/s,
    },
    { what: 'an unknown routing policy', set: ['router.policy=fastest'], message: /\/router\/policy/ },
    {
      what: 'a CUDA device without a GPU',
      set: ['workers.prefill.device=cuda:0', 'workers.prefill.gpus=0'],
      message: /\/workers\/prefill\/gpus.*minimum/s,
    },
    { what: 'external NATS without a URL', set: ['nats.deploy=false'], message: /\/nats.*url/s },
    {
      what: 'a malformed Redis URL',
      set: ['redis.deploy=false', 'redis.url=localhost:6379'],
      message: /\/redis\/url.*pattern/s,
    },
    {
      what: 'the planner without Prometheus',
      set: ['planner.enabled=true'],
      message: /\/planner.*prometheusUrl/s,
    },
    {
      what: 'a misspelled key',
      set: ['router.replica=3'],
      message: /\/router.*additional properties 'replica'/s,
    },
    {
      what: 'gRPC TLS with neither a Secret nor a cert-manager issuer',
      set: ['security.tls.enabled=true'],
      message: /\/security\/tls\/certManager\/issuerRef\/name.*minLength/s,
    },
    {
      what: 'an issuer kind cert-manager does not have',
      set: [
        'security.tls.enabled=true',
        'security.tls.certManager.issuerRef.name=ca',
        'security.tls.certManager.issuerRef.kind=Issuers',
      ],
      message: /\/security\/tls\/certManager\/issuerRef\/kind.*one of/s,
    },
    {
      what: 'a TLS server name that is not a DNS name',
      set: ['security.tls.serverName=tandem_grpc'],
      message: /\/security\/tls\/serverName.*pattern/s,
    },
    {
      what: 'an unknown admin access',
      set: ['router.adminAccess=sometimes'],
      message: /\/router\/adminAccess.*one of/s,
    },
    {
      what: 'a NATS URL without its scheme',
      set: ['nats.deploy=false', 'nats.url=nats.infra:4222'],
      message: /\/nats\/url.*pattern/s,
    },
    {
      what: 'a URL Secret without a key',
      set: ['redis.deploy=false', 'redis.urlSecret.name=redis-url', 'redis.urlSecret.key='],
      message: /\/redis\/urlSecret\/key.*minLength/s,
    },
    {
      what: 'a grace period too short for the drain',
      set: ['workers.decode.terminationGracePeriodSeconds=10'],
      message: /\/workers\/decode\/terminationGracePeriodSeconds.*minimum/s,
    },
    {
      what: 'no pool that serves requests',
      set: ['workers.decode.enabled=false'],
      message: /\/workers/,
    },
  ];
  for (const c of cases) {
    test(c.what, () => {
      const run = helm(['template', 'tandem', chartDir, ...c.set.flatMap((s) => ['--set', s])]);
      assert.notEqual(run.status, 0, `rendered with ${c.set.join(' ')}`);
      assert.match(run.stderr, /values don't meet the specifications of the schema/);
      assert.match(run.stderr, c.message);
    });
  }
});

describe('what the objects say', () => {
  test('PD with the planner: pools without spec.replicas, pod identity in the worker flags, drain time', () => {
    const objects = render(['-f', join(chartDir, 'ci', 'pd-2p-6d.yaml')]);
    for (const role of ['prefill', 'decode']) {
      const deployment = find(objects, 'Deployment', `tandem-${role}`);
      assert.equal(
        (deployment.spec as { replicas?: number }).replicas,
        undefined,
        `${role} count left to the planner`,
      );
      const args = mainContainer(objects, `tandem-${role}`).args ?? [];
      assert.deepEqual(args.slice(args.indexOf('--worker-id'), args.indexOf('--worker-id') + 2), [
        '--worker-id',
        '$(POD_NAME)',
      ]);
      assert.ok(args.includes('$(POD_IP):50051'));
    }
    assert.equal(podSpecOf(find(objects, 'Deployment', 'tandem-decode'))?.terminationGracePeriodSeconds, 300);
    assert.equal(podSpecOf(find(objects, 'Deployment', 'tandem-prefill'))?.terminationGracePeriodSeconds, 60);
    const downloader = podSpecOf(find(objects, 'Deployment', 'tandem-decode'))?.initContainers?.[0];
    assert.equal(downloader?.name, 'download-model');
    const router = podSpecOf(find(objects, 'Deployment', 'tandem-router'))?.initContainers?.[0];
    assert.ok(router?.args?.includes('--include'), 'routers fetch only the tokenizer files');
  });

  test("the planner's RBAC: the two Scale subresources by name, pods; nothing else", () => {
    const objects = render(['-f', join(chartDir, 'ci', 'pd-2p-6d.yaml')]);
    const role = find(objects, 'Role', 'tandem-planner') as KubeObject & {
      rules: Array<{ apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] }>;
    };
    assert.deepEqual(role.rules, [
      {
        apiGroups: ['apps'],
        resources: ['deployments/scale'],
        resourceNames: ['tandem-prefill', 'tandem-decode'],
        verbs: ['get', 'patch', 'update'],
      },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch'] },
    ]);
    assert.equal(
      podSpecOf(find(objects, 'Deployment', 'tandem-planner'))?.serviceAccountName,
      'tandem-planner',
    );
    assert.ok(!objects.some((o) => o.kind === 'ClusterRole'), 'no cluster-wide rights');
  });

  test('external NATS and Redis: no NATS or Redis objects, their URLs (one from a Secret) in every process', () => {
    const objects = render(['-f', join(chartDir, 'ci', 'external.yaml')]);
    assert.ok(!objects.some((o) => o.metadata.name.endsWith('-nats') || o.metadata.name.endsWith('-redis')));
    for (const name of ['tandem-router', 'tandem-prefill', 'tandem-decode']) {
      const env = mainContainer(objects, name).env ?? [];
      assert.deepEqual(
        env.find((e) => e.name === 'NATS_URL'),
        { name: 'NATS_URL', valueFrom: { secretKeyRef: { name: 'nats-url', key: 'url' } } },
        name,
      );
      assert.equal(
        env.find((e) => e.name === 'REDIS_URL')?.value,
        'redis://redis-master.cache.svc:6379',
        name,
      );
      const args = mainContainer(objects, name).args ?? [];
      assert.ok(!args.includes('--nats') && !args.includes('--redis'), `${name}: no URL in the flags`);
    }
  });

  test('NOTES.txt names the gateway and a first curl', () => {
    const run = helm(['install', 'tandem', chartDir, '--dry-run=client', '--namespace', 'llm']);
    assert.equal(run.status, 0, run.stderr);
    const notes = run.stdout.slice(run.stdout.indexOf('NOTES:'));
    assert.match(notes, /port-forward svc\/tandem-router 8000:80/);
    assert.match(notes, /curl -s \$GATEWAY\/v1\/chat\/completions/);
    assert.match(notes, /"model": "tandem-demo-code"/);
  });
});
