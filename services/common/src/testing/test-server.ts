// A real backing server for tests, on a free port in a temp dir.
import { ChildServer } from '../child-server.ts';
import type { ServerCommand } from '../server-commands.ts';

export interface TestServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly server: ChildServer;
  /** Kills the process, keeping port and data (clients see a disconnect). */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** `credentials`: what the url carries before the host ('user:password@'), or ''. */
export async function startTestServer(command: ServerCommand, credentials = ''): Promise<TestServer> {
  const server = await ChildServer.start({ name: command.name, command: command.binary, args: command.args });
  return {
    url: `${command.scheme}://${credentials}127.0.0.1:${server.port}`,
    port: server.port,
    server,
    kill: () => server.kill(),
    restart: () => server.restart(),
    stop: () => server.stop(),
    [Symbol.asyncDispose]: () => server.stop(),
  };
}
