// The dashboards on live data: a PD cluster (router, prefill and decode worker processes) under
// load, a real Prometheus scraping every process through the router's /debug/targets, and every
// panel query of deploy/grafana/*.json evaluated over the Prometheus HTTP API: each returns data,
// and the panels load should move return non-zero values during the load. Also: the JSON is what
// test/observe/dashboards.ts generates, and it type-checks against @grafana/schema's Dashboard.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dashboardSpecs, datasourceUid } from '../observe/dashboards.ts';
import { dashboardText } from '../observe/gen-dashboards.ts';
import {
  driveLoad,
  type LoadReport,
  type ObservedCluster,
  queryRange,
  resolveVariables,
  startObservedCluster,
} from '../observe/observed-cluster.ts';
import { repoRoot } from './router-cluster.ts';

const grafanaDir = join(repoRoot, 'deploy', 'grafana');

interface PanelJson {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
}

function dashboardFile(file: string): {
  uid: string;
  panels: PanelJson[];
  templating: { list: { name: string; type: string }[] };
} {
  return JSON.parse(readFileSync(join(grafanaDir, file), 'utf8'));
}

describe('dashboards', () => {
  test('deploy/grafana/*.json are generated from test/observe/dashboards.ts (pnpm dashboards:gen)', () => {
    for (const spec of dashboardSpecs) {
      assert.equal(
        readFileSync(join(grafanaDir, spec.file), 'utf8'),
        dashboardText(spec),
        `${spec.file} is stale`,
      );
    }
  });

  test('each dashboard type-checks as @grafana/schema Dashboard (excess properties included) and uses the datasource variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-grafana-'));
    try {
      // The JSON as an object literal `satisfies Dashboard`: TypeScript rejects unknown keys and
      // wrong types anywhere the schema types them.
      symlinkSync(join(repoRoot, 'test', 'node_modules'), join(dir, 'node_modules'));
      const files = dashboardSpecs.map((spec, i) => {
        const file = `dashboard${i}.ts`;
        writeFileSync(
          join(dir, file),
          `import type { Dashboard } from '@grafana/schema';\nexport const dashboard = ${readFileSync(join(grafanaDir, spec.file), 'utf8').trim()} satisfies Dashboard;\n`,
        );
        return file;
      });
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            module: 'nodenext',
            moduleResolution: 'nodenext',
            noEmit: true,
            skipLibCheck: true,
            types: [],
          },
          files,
        }),
      );
      const tsc = join(repoRoot, 'node_modules', '.bin', 'tsc');
      try {
        execFileSync(tsc, ['-p', join(dir, 'tsconfig.json')], { encoding: 'utf8', stdio: 'pipe' });
      } catch (error) {
        const output = (error as { stdout?: string }).stdout ?? String(error);
        assert.fail(`a dashboard does not match @grafana/schema:\n${output}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    for (const spec of dashboardSpecs) {
      const dashboard = dashboardFile(spec.file);
      assert.ok(dashboard.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'));
      const ids = new Set<number>();
      for (const panel of dashboard.panels) {
        assert.ok(!ids.has(panel.id), `${spec.file}: panel id ${panel.id} twice`);
        ids.add(panel.id);
        if (panel.type === 'row') continue;
        assert.equal(panel.datasource?.uid, datasourceUid, `${spec.file}: ${panel.title}`);
        assert.ok((panel.targets ?? []).length > 0, `${spec.file}: ${panel.title} has no query`);
        for (const target of panel.targets ?? []) assert.equal(target.datasource?.uid, datasourceUid);
      }
    }
  });
});

describe('every panel on live data (PD cluster, real Prometheus)', () => {
  let cluster: ObservedCluster;
  let load: LoadReport;

  before(async () => {
    cluster = await startObservedCluster(1);
    const { prometheus } = cluster;
    // Every process is discovered and scraped before the load starts.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const up = await queryRange(
        prometheus.url,
        'up{job="tandem"} == 1',
        Date.now() / 1000 - 1,
        Date.now() / 1000,
      );
      if (up.length === 3) break;
      if (Date.now() > deadline) throw new Error(`prometheus scrapes ${up.length} of 3 processes`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    load = await driveLoad(cluster.router.url, 14);
    // The last scrapes and rule evaluations after the load.
    await new Promise((resolve) => setTimeout(resolve, 3000));
  });

  after(async () => {
    await cluster?.stop();
  });

  test('the load succeeded, and the burst past admission got 429s', () => {
    assert.ok((load.statuses.get(200) ?? 0) > 20, `statuses: ${JSON.stringify([...load.statuses])}`);
    assert.ok((load.statuses.get(429) ?? 0) > 0, `no 429: ${JSON.stringify([...load.statuses])}`);
    assert.deepEqual(
      [...load.statuses.keys()].filter((s) => s !== 200 && s !== 429),
      [],
    );
  });

  test('prometheus scraped the router, the prefill and the decode worker (found through /debug/targets)', async () => {
    const up = await queryRange(cluster.prometheus.url, 'up{job="tandem"}', load.startedAtS, load.endedAtS);
    const byProcess = new Map(up.map((series) => [series.metric.tandem_process, series]));
    assert.deepEqual([...byProcess.keys()].sort(), ['decode', 'prefill', 'router']);
    for (const [process, series] of byProcess) {
      assert.ok(
        series.values.every(([, value]) => value === '1'),
        `${process} was down during the load`,
      );
    }
  });

  for (const spec of dashboardSpecs) {
    test(`${spec.file}: every query returns data; panels load moves are non-zero`, async () => {
      const dashboard = dashboardFile(spec.file);
      const moves = new Map(
        spec.rows.flatMap((row) => row.panels.map((panel) => [panel.title, panel.moves] as const)),
      );
      const failures: string[] = [];
      let numQueries = 0;
      for (const panel of dashboard.panels) {
        if (panel.type === 'row') continue;
        const shouldMove = moves.get(panel.title);
        assert.notEqual(shouldMove, undefined, `${panel.title} is not in the spec`);
        let panelMoved = false;
        for (const target of panel.targets ?? []) {
          numQueries++;
          const expr = resolveVariables(target.expr, 4);
          const result = await queryRange(cluster.prometheus.url, expr, load.startedAtS, load.endedAtS + 2);
          if (result.length === 0 || result.every((series) => series.values.length === 0)) {
            failures.push(`${panel.title} [${target.refId}] returned no data: ${expr}`);
            continue;
          }
          if (
            result.some((series) =>
              series.values.some(([, value]) => Number(value) !== 0 && Number.isFinite(Number(value))),
            )
          ) {
            panelMoved = true;
          }
        }
        if (shouldMove === true && !panelMoved) failures.push(`${panel.title} stayed at zero under load`);
      }
      assert.ok(numQueries > 10);
      assert.deepEqual(failures, []);
    });
  }

  test('GET /debug lists every process with its metrics endpoint, and each serves Prometheus text', async () => {
    const response = await fetch(`${cluster.router.url}/debug`);
    const body = (await response.json()) as {
      processes: { role: string; id: string; metricsAddress: string | null }[];
    };
    assert.deepEqual(body.processes.map((p) => p.role).sort(), ['decode', 'prefill', 'router']);
    for (const process of body.processes) {
      assert.notEqual(process.metricsAddress, null);
      const text = await (await fetch(`http://${process.metricsAddress}/metrics`)).text();
      if (process.role === 'router') {
        assert.match(
          text,
          /^tandem_router_time_to_first_token_seconds_count\{model="tandem-demo-code"\} [1-9]/m,
        );
        assert.match(
          text,
          /^vllm:time_to_first_token_seconds_count\{model="tandem-demo-code",model_name="tandem-demo-code"\} [1-9]/m,
        );
      } else {
        const labels = `worker="${process.id}",role="${process.role}",model="tandem-demo-code"`;
        for (const name of [
          'tandem_worker_queued_prefill_tokens',
          'tandem_worker_kv_usage_ratio',
          'tandem_worker_requests_waiting',
          'tandem_worker_requests_running',
        ]) {
          assert.match(text, new RegExp(`^${name}\\{${labels}\\} \\d`, 'm'), `${process.role}: ${name}`);
        }
        for (const name of [
          'vllm:num_requests_waiting',
          'vllm:num_requests_running',
          'vllm:kv_cache_usage_perc',
        ]) {
          assert.match(
            text,
            new RegExp(`^${name}\\{${labels},model_name="tandem-demo-code"\\} \\d`, 'm'),
            name,
          );
        }
      }
    }
  });
});
