// A real `redis-server` for tests: no persistence, a free port, a temp dir.
import { ChildServer } from '../child-server.ts';

export interface TestRedisServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly server: ChildServer;
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisServer(): Promise<TestRedisServer> {
  const server = await ChildServer.start({
    name: 'redis',
    command: 'redis-server',
    args: (port, dataDir) => [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dataDir,
    ],
  });
  return {
    url: `redis://127.0.0.1:${server.port}`,
    port: server.port,
    server,
    kill: () => server.kill(),
    restart: () => server.restart(),
    stop: () => server.stop(),
    [Symbol.asyncDispose]: () => server.stop(),
  };
}
