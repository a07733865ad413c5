// Writes deploy/grafana/*.json from test/observe/dashboards.ts (`pnpm dashboards:gen`).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dashboardJson, dashboardSpecs } from './dashboards.ts';

const outDir = new URL('../../deploy/grafana/', import.meta.url).pathname;

/** The file text of a dashboard, as committed. */
export function dashboardText(spec: (typeof dashboardSpecs)[number]): string {
  return `${JSON.stringify(dashboardJson(spec), null, 2)}\n`;
}

if (import.meta.main) {
  for (const spec of dashboardSpecs) {
    writeFileSync(join(outDir, spec.file), dashboardText(spec));
    process.stdout.write(`wrote deploy/grafana/${spec.file}\n`);
  }
}
