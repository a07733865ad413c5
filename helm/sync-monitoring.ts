// Copies the dashboards and rules of deploy/ into the chart (`pnpm chart:sync`; `pnpm
// dashboards:gen` runs it too): Helm reads no file outside the chart's folder, so the chart ships
// byte-identical copies, and test/helm/monitoring.test.ts fails when they drift.
//   deploy/grafana/*.json             -> helm/tandem/dashboards/*.json
//   deploy/prometheus/tandem.rules.yml -> helm/tandem/rules/tandem.rules.yml
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface ChartCopy {
  /** The source of truth, under deploy/. */
  source: string;
  /** Its copy inside the chart. */
  copy: string;
}

/** Every file the chart copies from deploy/ (absolute paths). */
export function chartCopies(root = repoRoot): ChartCopy[] {
  const grafana = join(root, 'deploy', 'grafana');
  const dashboards = readdirSync(grafana)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => ({ source: join(grafana, file), copy: join(root, 'helm', 'tandem', 'dashboards', file) }));
  return [
    ...dashboards,
    {
      source: join(root, 'deploy', 'prometheus', 'tandem.rules.yml'),
      copy: join(root, 'helm', 'tandem', 'rules', 'tandem.rules.yml'),
    },
  ];
}

/** Writes the copies, and removes chart dashboards that deploy/ no longer has. */
export function syncChart(root = repoRoot): string[] {
  const copies = chartCopies(root);
  const dashboardsDir = join(root, 'helm', 'tandem', 'dashboards');
  mkdirSync(dashboardsDir, { recursive: true });
  mkdirSync(join(root, 'helm', 'tandem', 'rules'), { recursive: true });
  const wanted = new Set(copies.map((c) => c.copy));
  for (const file of readdirSync(dashboardsDir)) {
    if (!wanted.has(join(dashboardsDir, file))) rmSync(join(dashboardsDir, file));
  }
  for (const { source, copy } of copies) copyFileSync(source, copy);
  return copies.map((c) => relative(root, c.copy));
}

if (import.meta.main) {
  for (const written of syncChart()) process.stdout.write(`wrote ${written}\n`);
}
