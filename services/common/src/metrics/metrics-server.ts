// A process's metrics endpoint: GET /metrics renders the registry (Prometheus text), GET /healthz
// answers while the event loop does (the chart's liveness probes), anything else is 404. Workers
// and the planner serve it on their own port (0 picks a free one); the router keeps /metrics on
// its HTTP port.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UnavailableError } from '../errors.ts';
import type { MetricsRegistry } from './registry.ts';

export interface MetricsServer {
  readonly port: number;
  /** host:port as others should reach it. */
  readonly address: string;
  close(): Promise<void>;
}

export const prometheusContentType = 'text/plain; version=0.0.4; charset=utf-8';

export async function startMetricsServer(
  registry: MetricsRegistry,
  options: { host: string; port: number; advertiseHost?: string },
): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method === 'GET' && path === '/metrics') {
      const text = registry.render();
      response.writeHead(200, { 'content-type': prometheusContentType });
      response.end(text);
    } else if (request.method === 'GET' && path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end('ok\n');
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' });
      response.end('not found: metrics are at GET /metrics\n');
    }
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause) =>
      reject(new UnavailableError(`cannot serve metrics on ${options.host}:${options.port}`, { cause })),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  server.unref();
  const port = (server.address() as AddressInfo).port;
  const host = options.advertiseHost ?? options.host;
  return {
    port,
    address: `${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
