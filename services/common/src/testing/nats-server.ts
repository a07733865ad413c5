// A real `nats-server -js` for tests, on a free port in a temp dir; optionally requiring a user and
// password (its url then carries them).
import { natsServerCommand } from '../server-commands.ts';
import { startTestServer, type TestServer } from './test-server.ts';

export type TestNatsServer = TestServer;

export function startNatsServer(
  auth: { user: string; password: string } | null = null,
): Promise<TestNatsServer> {
  if (auth === null) return startTestServer(natsServerCommand);
  return startTestServer(
    {
      ...natsServerCommand,
      args: (port, dataDir) => [
        ...natsServerCommand.args(port, dataDir),
        '--user',
        auth.user,
        '--pass',
        auth.password,
      ],
    },
    `${encodeURIComponent(auth.user)}:${encodeURIComponent(auth.password)}@`,
  );
}
