// NATS (nats.js v3 over TCP): connect with endless reconnects, so a NATS restart is a pause and
// not a crash. Subjects live in subjects.ts.
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { redactUrl } from './config.ts';
import { UnavailableError } from './errors.ts';

export type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';

export interface NatsConnectOptions {
  url: string;
  /** Shown in the server's connection list, e.g. 'tandem-worker-w1'. */
  name: string;
  /** How long the first connection may take (default 5 s). */
  connectTimeoutMs?: number;
}

/**
 * Credentials in the URL, as nats.js does not read them there: nats://user:password@host or
 * nats://token@host (the URL then goes on without them). tls:// asks for TLS.
 */
export function natsServerOf(url: string): { servers: string; user?: string; pass?: string; token?: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { servers: url };
  }
  const user = decodeURIComponent(parsed.username);
  const pass = decodeURIComponent(parsed.password);
  if (user === '' && pass === '') return { servers: url };
  parsed.username = '';
  parsed.password = '';
  const servers = parsed.toString().replace(/\/$/, '');
  return pass === '' ? { servers, token: user } : { servers, user, pass };
}

export async function connectNats(options: NatsConnectOptions): Promise<NatsConnection> {
  try {
    return await connect({
      ...natsServerOf(options.url),
      name: options.name,
      timeout: options.connectTimeoutMs ?? 5000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 10_000,
    });
  } catch (cause) {
    throw new UnavailableError(`cannot connect to NATS at ${redactUrl(options.url)}`, { cause });
  }
}
