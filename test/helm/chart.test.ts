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
import { find, mainContainer, podSpecOf, render } from './render.ts';

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

describe('every flag the chart passes exists in the CLI', () => {
  /** Runs the real command parser on the rendered arguments; --help stops it after parsing. */
  function parses(command: string[], args: string[]): { status: number; output: string } {
    const resolved = args.map((a) => a.replace(/\$\((POD_NAME|POD_IP|POD_NAMESPACE|NODE_NAME)\)/g, 'x'));
    const result = spawnSync(command[0] ?? '', [...command.slice(1), ...resolved, '--help'], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
  }

  const tandem = [join(repoRoot, 'services', 'cli', 'bin', 'tandem')];
  const node = [process.execPath, '--disable-warning=ExperimentalWarning'];
  const seen = new Set<string>();
  const lines: Array<{ where: string; command: string[]; args: string[] }> = [];
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
        const key = JSON.stringify([command, args]);
        if (!seen.has(key)) {
          seen.add(key);
          lines.push({
            where: `${set.name}: ${object.kind} ${object.metadata.name}/${container.name}`,
            command,
            args,
          });
        }
        // The workers' readiness probe is a script of the image too.
        const probe = container.readinessProbe?.exec?.command ?? [];
        if (
          probe[0] === 'node' &&
          probe[1] === '/app/deploy/images/worker-ready.ts' &&
          !seen.has(JSON.stringify(probe))
        ) {
          seen.add(JSON.stringify(probe));
          lines.push({
            where: `${set.name}: ${object.kind} ${object.metadata.name}/${container.name} readiness probe`,
            command: [...node, join(repoRoot, 'deploy', 'images', 'worker-ready.ts')],
            args: probe.slice(2),
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
      const { status, output } = parses(line.command, line.args);
      assert.equal(status, 0, `${line.args.join(' ')}\n${output}`);
      assert.match(output, /usage:/);
    });
  }

  test('an unknown flag is refused by the same parsers (the check can fail)', () => {
    const router = lines.find((l) => l.args[0] === 'router');
    assert.ok(router);
    const { status, output } = parses(router.command, [...router.args, '--no-such-flag', '1']);
    assert.equal(status, 2, output);
    assert.match(output, /no-such-flag/);
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

  test('external NATS and Redis: no NATS or Redis objects, their URLs in every command line', () => {
    const objects = render(['-f', join(chartDir, 'ci', 'external.yaml')]);
    assert.ok(!objects.some((o) => o.metadata.name.endsWith('-nats') || o.metadata.name.endsWith('-redis')));
    for (const name of ['tandem-router', 'tandem-prefill', 'tandem-decode']) {
      const args = mainContainer(objects, name).args ?? [];
      assert.ok(args.includes('nats://nats.messaging.svc:4222'), name);
      assert.ok(args.includes('redis://redis-master.cache.svc:6379'), name);
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
