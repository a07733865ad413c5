// A real `redis-server` for tests: no persistence, a free port, a temp dir; optionally requiring a
// password (its url then carries it).
import { redisServerCommand } from '../server-commands.ts';
import { startTestServer, type TestServer } from './test-server.ts';

export type TestRedisServer = TestServer;

export function startRedisServer(auth: { password: string } | null = null): Promise<TestRedisServer> {
  if (auth === null) return startTestServer(redisServerCommand);
  return startTestServer(
    {
      ...redisServerCommand,
      args: (port, dataDir) => [...redisServerCommand.args(port, dataDir), '--requirepass', auth.password],
    },
    `:${encodeURIComponent(auth.password)}@`,
  );
}
