// A private Prometheus (Debian's `prometheus` package) scraping a tandem cluster: the
// configuration for it and the server as a child process on its own port and data directory
// (never the system service). It finds every process through the router's GET /debug/targets
// (Prometheus HTTP service discovery: the router lists itself and every worker's announced
// metrics endpoint), so workers that join later are scraped too. `tandem up --observe` and the
// observability tests use it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChildServer } from './child-server.ts';
import { ensureBinary } from './ensure-services.ts';
import { DependencyMissingError, UnavailableError } from './errors.ts';
import type { Logger } from './logger.ts';
import { canConnect } from './ports.ts';

export interface PrometheusConfig {
  /** The router's base URL (http://host:port): its /debug/targets lists what to scrape. */
  routerUrl: string;
  scrapeIntervalS: number;
  /** Rule files (recording and alerting), absolute paths. */
  ruleFiles: readonly string[];
}

/** prometheus.yml for a cluster (YAML is a superset of JSON: written as JSON). */
export function prometheusConfigText(config: PrometheusConfig): string {
  const interval = `${config.scrapeIntervalS}s`;
  return `${JSON.stringify(
    {
      global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
      rule_files: config.ruleFiles,
      scrape_configs: [
        {
          job_name: 'tandem',
          http_sd_configs: [{ url: `${config.routerUrl}/debug/targets`, refresh_interval: interval }],
        },
      ],
    },
    null,
    2,
  )}\n`;
}

export interface RunningPrometheus {
  /** http://127.0.0.1:port */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Starts Prometheus on a free port (or `port`) with `config`, its data in a temp dir; installs
 * Debian's package first when it is missing and we are root.
 */
export async function startPrometheus(
  config: PrometheusConfig,
  logger: Logger,
  port?: number,
): Promise<RunningPrometheus> {
  if (!ensureBinary('prometheus', 'prometheus', logger)) {
    throw new DependencyMissingError(
      'prometheus is not installed (Debian/Ubuntu: sudo apt-get install prometheus)',
    );
  }
  if (port !== undefined && port !== 0 && (await canConnect('127.0.0.1', port, 500))) {
    throw new UnavailableError(`port ${port} is already in use (another Prometheus?); choose another port`);
  }
  const server = await ChildServer.start({
    name: 'prometheus',
    command: 'prometheus',
    ...(port === undefined || port === 0 ? {} : { port }),
    args: (boundPort, dataDir) => {
      const configFile = join(dataDir, 'prometheus.yml');
      writeFileSync(configFile, prometheusConfigText(config));
      return [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dataDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${boundPort}`,
        '--storage.tsdb.retention.time=1d',
        '--log.level=warn',
      ];
    },
  });
  const url = `http://127.0.0.1:${server.port}`;
  // It listens before it has loaded its storage (503 until then).
  const deadline = Date.now() + 30_000;
  while (
    !(await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (Date.now() > deadline) {
      await server.stop();
      throw new UnavailableError(`prometheus on port ${server.port} did not become ready`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    port: server.port,
    stop: () => server.stop(),
  };
}
