// A real `nats-server -js` for tests, on a free port in a temp dir.
import { natsServerCommand } from '../server-commands.ts';
import { startTestServer, type TestServer } from './test-server.ts';

export type TestNatsServer = TestServer;

export function startNatsServer(): Promise<TestNatsServer> {
  return startTestServer(natsServerCommand);
}
