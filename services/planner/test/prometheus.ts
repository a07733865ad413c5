// A real Prometheus for the planner's tests (Debian's `prometheus`, installed by bootstrap.sh),
// scraping the given targets every second, on a free port in a temp dir.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildServer } from '@tandem/common/testing';

export async function startPrometheus(targets: string[]): Promise<ChildServer> {
  const config = join(mkdtempSync(join(tmpdir(), 'tandem-prometheus-')), 'prometheus.yml');
  const list = targets.map((t) => `'${t}'`).join(', ');
  writeFileSync(
    config,
    `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: tandem\n    static_configs:\n      - targets: [${list}]\n`,
  );
  return ChildServer.start({
    name: 'prometheus',
    command: 'prometheus',
    args: (port, dataDir) => [
      `--config.file=${config}`,
      `--storage.tsdb.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=error',
    ],
  });
}

/** Waits until `metric` has `samples` scrapes within the last `window` (rate() over it is then exact). */
export async function waitForSamples(
  url: string,
  metric: string,
  window: string,
  samples: number,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const query = new URL('/api/v1/query', url);
    query.searchParams.set('query', `count_over_time(${metric}[${window}])`);
    const body = (await fetch(query)
      .then((r) => r.json())
      .catch(() => null)) as { data?: { result?: Array<{ value: [number, string] }> } } | null;
    if (Number(body?.data?.result?.[0]?.value[1] ?? 0) >= samples) return;
    if (Date.now() > deadline)
      throw new Error(`Prometheus did not get ${samples} samples of ${metric} in 60 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
