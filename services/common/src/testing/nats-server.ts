// A real `nats-server -js` for tests, on a free port in a temp dir.
import { ChildServer } from '../child-server.ts';

export interface TestNatsServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly server: ChildServer;
  /** Kills the process, keeping port and data (clients see a disconnect). */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startNatsServer(): Promise<TestNatsServer> {
  const server = await ChildServer.start({
    name: 'nats',
    command: 'nats-server',
    args: (port, dataDir) => ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dataDir],
  });
  return {
    url: `nats://127.0.0.1:${server.port}`,
    port: server.port,
    server,
    kill: () => server.kill(),
    restart: () => server.restart(),
    stop: () => server.stop(),
    [Symbol.asyncDispose]: () => server.stop(),
  };
}
