// Free ports and "wait until something listens" for tests and the local launcher.
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { TimeoutError } from './errors.ts';

// Ports handed out are drawn at random below Linux's ephemeral range (32768+), so they never
// collide with ports the OS assigns to listen(0) / outgoing connections, and two processes that
// each ask for a free port at the same moment almost never get the same one (the OS's listen(0)
// would happily give the port it just freed to both).
const PORT_RANGE_LOW = 15_000;
const PORT_RANGE_HIGH = 32_000;
const handedOut = new Set<number>();

async function canListen(port: number, host: string): Promise<boolean> {
  const server = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, host, () => resolve(true));
  });
  if (ok) await new Promise<void>((resolve) => server.close(() => resolve()));
  return ok;
}

/** A TCP port that was free a moment ago (another process may still race us, rarely). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_RANGE_LOW + Math.floor(Math.random() * (PORT_RANGE_HIGH - PORT_RANGE_LOW));
    if (handedOut.has(port)) continue;
    if (await canListen(port, host)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new TimeoutError(`no free TCP port in ${PORT_RANGE_LOW}-${PORT_RANGE_HIGH} after 200 tries`);
}

/** True when a TCP connection to host:port succeeds within timeoutMs. */
export function canConnect(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Resolves once host:port accepts connections; throws TimeoutError after timeoutMs. */
export async function waitForPort(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await canConnect(host, port, Math.min(500, Math.max(1, deadline - Date.now())))) return;
    await sleep(25);
  }
  throw new TimeoutError(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
}
