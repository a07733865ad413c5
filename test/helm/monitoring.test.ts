// One source of dashboards and rules: the chart ships byte-identical copies of deploy/grafana/*.json
// and deploy/prometheus/tandem.rules.yml (helm/sync-monitoring.ts, `pnpm chart:sync`), renders one
// ConfigMap per dashboard for Grafana's sidecar and the PrometheusRule's groups from the copied
// rules; every metric those name is one a tandem process registers, and the ServiceMonitor scrapes
// ports that the chart's Services and containers really have.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { chartCopies } from '../../helm/sync-monitoring.ts';
import { plannerQueries } from '../../services/planner/src/prometheus-signals.ts';
import { chartDir, repoRoot } from './helm.ts';
import type { KubeObject } from './kube-validate.ts';
import { find, flagValue, podSpecOf, render } from './render.ts';

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface RuleGroup {
  name: string;
  rules: Rule[];
}

const rulesFile = join(repoRoot, 'deploy', 'prometheus', 'tandem.rules.yml');
const deployGroups = (parse(readFileSync(rulesFile, 'utf8')) as { groups: RuleGroup[] }).groups;
const monitoringOn = [
  '--set',
  'monitoring.serviceMonitor.enabled=true',
  '--set',
  'monitoring.prometheusRule.enabled=true',
  '--set',
  'monitoring.dashboards.enabled=true',
];

describe("the chart's copies of deploy/", () => {
  test('are byte-identical to deploy/grafana/*.json and deploy/prometheus/tandem.rules.yml (pnpm chart:sync)', () => {
    const copies = chartCopies();
    assert.ok(copies.length >= 5, 'four dashboards and the rules');
    for (const { source, copy } of copies) {
      assert.ok(
        readFileSync(copy).equals(readFileSync(source)),
        `${copy} differs from ${source}: run pnpm chart:sync`,
      );
    }
  });

  test('and the chart has no dashboard or rules file of its own', () => {
    const copies = new Set(chartCopies().map((c) => c.copy));
    for (const dir of ['dashboards', 'rules']) {
      for (const file of readdirSync(join(chartDir, dir))) {
        assert.ok(copies.has(join(chartDir, dir, file)), `helm/tandem/${dir}/${file} is not from deploy/`);
      }
    }
  });
});

describe('the PrometheusRule', () => {
  const rule = find(render(monitoringOn), 'PrometheusRule', 'tandem') as KubeObject & {
    spec: { groups: RuleGroup[] };
  };

  test('holds every group, record and alert of deploy/prometheus/tandem.rules.yml, unchanged', () => {
    assert.deepEqual(rule.spec.groups, deployGroups);
    const names = (groups: RuleGroup[]) =>
      groups.flatMap((g) => g.rules.map((r) => r.record ?? r.alert ?? '')).sort();
    const rendered = names(rule.spec.groups);
    for (const name of names(deployGroups)) assert.ok(rendered.includes(name), `${name} is rendered`);
    assert.ok(rendered.includes('TandemKVPoolExhausted') && rendered.includes('tandem:ttft_seconds:p95_5m'));
    // Alert templates reach Prometheus as written, not evaluated by helm.
    const kv = rule.spec.groups.flatMap((g) => g.rules).find((r) => r.alert === 'TandemKVPoolExhausted');
    assert.match(kv?.annotations?.summary ?? '', /\{\{ \$labels\.worker \}\}/);
  });

  test('has only the fields the prometheus-operator Rule schema has', () => {
    const allowed = new Set(['record', 'alert', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations']);
    for (const group of rule.spec.groups) {
      assert.deepEqual(Object.keys(group).sort(), ['name', 'rules']);
      for (const r of group.rules) {
        for (const key of Object.keys(r)) assert.ok(allowed.has(key), `${group.name}: ${key}`);
        assert.equal(typeof r.expr, 'string');
        assert.ok((r.record === undefined) !== (r.alert === undefined), 'a record or an alert');
      }
    }
  });
});

describe('the dashboard ConfigMaps', () => {
  const dashboards = chartCopies().filter((c) => c.copy.endsWith('.json'));

  test("one per dashboard, with Grafana's sidecar label, holding the dashboard's JSON", () => {
    const configMaps = render(monitoringOn).filter(
      (o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('tandem-dashboard-'),
    ) as Array<KubeObject & { data: Record<string, string> }>;
    assert.equal(configMaps.length, dashboards.length);
    for (const { source } of dashboards) {
      const file = source.split('/').at(-1) ?? '';
      const configMap = find(
        configMaps,
        'ConfigMap',
        `tandem-dashboard-${file.replace(/\.json$/, '')}`,
      ) as (typeof configMaps)[number];
      assert.equal(configMap.metadata.labels?.grafana_dashboard, '1');
      assert.deepEqual(JSON.parse(configMap.data[file] ?? ''), JSON.parse(readFileSync(source, 'utf8')));
    }
  });

  test('the label and annotations come from values', () => {
    const objects = render([
      ...monitoringOn,
      '--set',
      'monitoring.dashboards.label=tandem_dashboard',
      '--set',
      'monitoring.dashboards.labelValue=yes',
      '--set',
      'monitoring.dashboards.annotations.grafana_folder=LLM',
    ]);
    const overview = find(objects, 'ConfigMap', 'tandem-dashboard-overview');
    assert.equal(overview.metadata.labels?.tandem_dashboard, 'yes');
    assert.equal(overview.metadata.labels?.grafana_dashboard, undefined);
    assert.equal(overview.metadata.annotations?.grafana_folder, 'LLM');
  });

  test('nothing monitoring-related by default', () => {
    const kinds = render([]).map((o) => `${o.kind}/${o.metadata.name}`);
    assert.ok(!kinds.some((k) => /ServiceMonitor|PrometheusRule|dashboard/.test(k)), kinds.join(' '));
  });
});

/** Metric names a PromQL expression reads (recording rules, `tandem:...`, excluded). */
function metricNames(expr: string): string[] {
  const names = expr.match(
    /\b(?:tandem_[a-z0-9_]+|vllm:[a-z0-9_:]+|process_[a-z_]+|nodejs_[a-z0-9_]+|up)\b/g,
  );
  return [...new Set((names ?? []).map((n) => n.replace(/_(bucket|count|sum)$/, '')))];
}

/** Every string literal in the services' sources: where each metric is registered. */
function sourceLiterals(): Set<string> {
  const literals = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'node_modules') walk(path);
      else if (entry.name.endsWith('.ts')) {
        for (const match of readFileSync(path, 'utf8').matchAll(/'([a-z_:][a-z0-9_:]*)'/g)) {
          literals.add(match[1] ?? '');
        }
      }
    }
  };
  for (const pkg of readdirSync(join(repoRoot, 'services'))) {
    const src = join(repoRoot, 'services', pkg, 'src');
    if (readdirSync(join(repoRoot, 'services', pkg)).includes('src')) walk(src);
  }
  return literals;
}

describe('every metric the rules, the dashboards and the planner read is registered by a tandem process', () => {
  const registered = sourceLiterals();
  // Prometheus adds `up` to every target itself.
  registered.add('up');
  const exprs = [
    ...deployGroups.flatMap((g) => g.rules.map((r) => ({ where: r.record ?? r.alert ?? '', expr: r.expr }))),
    ...chartCopies()
      .filter((c) => c.copy.endsWith('.json'))
      .flatMap(({ source }) =>
        [...readFileSync(source, 'utf8').matchAll(/"(?:expr|query)": "((?:[^"\\]|\\.)*)"/g)].map((m) => ({
          where: source.split('/').at(-1) ?? '',
          expr: JSON.parse(`"${m[1] ?? ''}"`) as string,
        })),
      ),
    ...Object.entries(plannerQueries({ window: '1m', model: 'm', selector: 'namespace="llm"' })).map(
      ([signal, query]) => ({
        where: `planner ${signal}`,
        expr: typeof query === 'function' ? query('decode') : query,
      }),
    ),
  ];

  test('each name', () => {
    let checked = 0;
    for (const { where, expr } of exprs) {
      for (const name of metricNames(expr)) {
        assert.ok(registered.has(name), `${where}: ${name} is registered nowhere in services/*/src`);
        checked++;
      }
    }
    assert.ok(checked > 50, `checked ${checked} names`);
  });

  test('the check can fail', () => {
    assert.deepEqual(metricNames('rate(tandem_router_no_such_thing_bucket[5m])'), [
      'tandem_router_no_such_thing',
    ]);
    assert.ok(!registered.has('tandem_router_no_such_thing'));
  });
});

describe('the ServiceMonitor', () => {
  const objects = render(['-f', join(chartDir, 'ci', 'pd-2p-6d.yaml')]);
  const monitor = find(objects, 'ServiceMonitor', 'tandem') as KubeObject & {
    spec: {
      jobLabel: string;
      selector: { matchLabels: Record<string, string> };
      endpoints: Array<{ port: string; path: string }>;
    };
  };
  const services = objects.filter(
    (o) =>
      o.kind === 'Service' &&
      Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => o.metadata.labels?.[k] === v),
  ) as Array<
    KubeObject & {
      spec: { selector: Record<string, string>; ports: Array<{ name: string; targetPort: string }> };
    }
  >;

  test('scrapes the routers, every worker pool and the planner, all as job="tandem"', () => {
    const scraped = services.filter((s) =>
      s.spec.ports.some((p) => monitor.spec.endpoints.some((e) => e.port === p.name)),
    );
    assert.deepEqual(scraped.map((s) => s.metadata.name).sort(), [
      'tandem-decode',
      'tandem-planner',
      'tandem-prefill',
      'tandem-router',
    ]);
    for (const service of scraped) {
      assert.equal(service.metadata.labels?.[monitor.spec.jobLabel], 'tandem', service.metadata.name);
    }
  });

  test("each scraped port is a container port of the Service's pods, serving /metrics there", () => {
    for (const service of services) {
      for (const port of service.spec.ports) {
        if (!monitor.spec.endpoints.some((e) => e.port === port.name)) continue;
        const workload = objects.find(
          (o) =>
            o.kind === 'Deployment' &&
            Object.entries(service.spec.selector).every(([k, v]) => o.metadata.labels?.[k] === v),
        );
        assert.ok(workload, `the pods of ${service.metadata.name}`);
        const container = podSpecOf(workload)?.containers[0];
        const containerPort = container?.ports?.find((p) => p.name === port.targetPort);
        assert.ok(containerPort, `${service.metadata.name}: container port ${port.targetPort}`);
        const args = container?.args ?? [];
        if (args[0] === 'router')
          assert.equal(flagValue(args, '--port'), String(containerPort.containerPort));
        else assert.equal(flagValue(args, '--metrics-port'), String(containerPort.containerPort));
      }
    }
  });
});
