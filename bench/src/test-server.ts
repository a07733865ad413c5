// The test server as its own process:
//   node bench/src/test-server.ts --port 0 --seed 1 --ttft-ms 50 --itl-ms 10 --jitter-ms 2 \
//     --log /tmp/server.jsonl
// prints one JSON line {"type":"listening","port":N} on stdout, serves until SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { startTestServer } from './test-server/server.ts';

export type { ServerLogRecord } from './test-server/log-record.ts';
export { startTestServer, type TestServerOptions } from './test-server/server.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      model: { type: 'string', default: 'test-model' },
      seed: { type: 'string', default: '0' },
      'ttft-ms': { type: 'string', default: '50' },
      'itl-ms': { type: 'string', default: '10' },
      'jitter-ms': { type: 'string', default: '0' },
      'slow-ttft-fraction': { type: 'string', default: '0' },
      'slow-ttft-ms': { type: 'string', default: '0' },
      'slow-itl-fraction': { type: 'string', default: '0' },
      'slow-itl-ms': { type: 'string', default: '0' },
      'cache-block-tokens': { type: 'string', default: '16' },
      log: { type: 'string' },
    },
  });
  const server = await startTestServer({
    host: values.host,
    port: Number(values.port),
    model: values.model,
    seed: Number(values.seed),
    ttftMs: Number(values['ttft-ms']),
    itlMs: Number(values['itl-ms']),
    jitterMs: Number(values['jitter-ms']),
    slowTtftFraction: Number(values['slow-ttft-fraction']),
    slowTtftMs: Number(values['slow-ttft-ms']),
    slowItlFraction: Number(values['slow-itl-fraction']),
    slowItlMs: Number(values['slow-itl-ms']),
    cacheBlockTokens: Number(values['cache-block-tokens']),
    logPath: values.log ?? null,
  });
  process.stdout.write(`${JSON.stringify({ type: 'listening', port: server.port })}\n`);
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (import.meta.main) await main();
