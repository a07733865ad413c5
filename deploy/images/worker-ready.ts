// The worker pods' readiness probe (the chart runs it as an exec probe): ready = the model is
// loaded (the gRPC port accepts connections: the worker binds it after loading the checkpoint)
// and the worker is registered (its Redis lease, which the announcer renews every heartbeat and
// deletes when the worker starts draining, exists). No dependencies, so it starts in ~50 ms.
//   node deploy/images/worker-ready.ts --port 50051 [--redis redis://host:6379] [--worker-id ID]
// The worker id defaults to $POD_NAME (the chart's --worker-id), the Redis URL to $REDIS_URL (the
// worker's own, which may carry credentials from a Secret). Exit 0: ready; 1: not (why on
// stderr); 2: bad flags.
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const usage = `usage: node deploy/images/worker-ready.ts --port N [--redis URL] [--worker-id ID] [--timeout-ms 2000]
  ready = 127.0.0.1:PORT accepts a connection and the Redis key tandem:worker:<ID> exists
  --redis defaults to $REDIS_URL, --worker-id to $POD_NAME
`;

/** Must match redisKeys.workerLease in services/common/src/subjects.ts. */
export function leaseKey(workerId: string): string {
  return `tandem:worker:${workerId}`;
}

function open(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new Error(`${host}:${port}: no answer in ${timeoutMs} ms`)),
    );
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** One RESP command (AUTH / SELECT as the URL says, then EXISTS key); resolves with the integer reply. */
async function redisExists(url: string, key: string, timeoutMs: number): Promise<number> {
  const parsed = new URL(url);
  const socket = await open(parsed.hostname.replace(/^\[|\]$/g, ''), Number(parsed.port || 6379), timeoutMs);
  const encode = (parts: string[]) =>
    `*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`;
  const commands: string[][] = [];
  if (parsed.password !== '') {
    const password = decodeURIComponent(parsed.password);
    commands.push(
      parsed.username === '' ? ['AUTH', password] : ['AUTH', decodeURIComponent(parsed.username), password],
    );
  }
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '') commands.push(['SELECT', db]);
  commands.push(['EXISTS', key]);
  socket.write(commands.map(encode).join(''));
  return new Promise((resolve, reject) => {
    let buffer = '';
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const replies = buffer.split('\r\n').filter((l) => l !== '');
      const failed = replies.find((l) => l.startsWith('-'));
      if (failed !== undefined) {
        socket.destroy();
        reject(new Error(`redis: ${failed.slice(1)}`));
      } else if (replies.length >= commands.length) {
        socket.destroy();
        resolve(Number((replies[commands.length - 1] ?? ':0').slice(1)));
      }
    });
    socket.once('error', reject);
    socket.once('timeout', () => reject(new Error('redis: no answer')));
  });
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values: { port?: string; redis?: string; 'worker-id'?: string; 'timeout-ms'?: string; help?: boolean };
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        redis: { type: 'string' },
        'worker-id': { type: 'string' },
        'timeout-ms': { type: 'string' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (error) {
    process.stderr.write(`worker-ready: ${(error as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(usage);
    return 0;
  }
  const workerId = values['worker-id'] ?? env.POD_NAME;
  const redisUrl = values.redis ?? (env.REDIS_URL || undefined);
  const port = Number(values.port);
  if (redisUrl === undefined || workerId === undefined || !Number.isInteger(port) || port <= 0) {
    process.stderr.write(
      `worker-ready: --port, --redis (or $REDIS_URL) and --worker-id (or $POD_NAME) are required\n${usage}`,
    );
    return 2;
  }
  const timeoutMs = Number(values['timeout-ms'] ?? 2000);
  try {
    (await open('127.0.0.1', port, timeoutMs)).destroy();
  } catch (error) {
    process.stderr.write(
      `not ready: the model is not loaded yet (gRPC port ${port}: ${(error as Error).message})\n`,
    );
    return 1;
  }
  try {
    if ((await redisExists(redisUrl, leaseKey(workerId), timeoutMs)) !== 1) {
      process.stderr.write(
        `not ready: ${workerId} is not registered (no lease ${leaseKey(workerId)}; starting or draining)\n`,
      );
      return 1;
    }
  } catch (error) {
    process.stderr.write(`not ready: cannot check the lease (${(error as Error).message})\n`);
    return 1;
  }
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = await main(process.argv.slice(2));
}
