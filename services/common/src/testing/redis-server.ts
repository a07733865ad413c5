// A real `redis-server` for tests: no persistence, a free port, a temp dir.
import { redisServerCommand } from '../server-commands.ts';
import { startTestServer, type TestServer } from './test-server.ts';

export type TestRedisServer = TestServer;

export function startRedisServer(): Promise<TestRedisServer> {
  return startTestServer(redisServerCommand);
}
