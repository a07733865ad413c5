// NATS (nats.js v3 over TCP): connect with endless reconnects, so a NATS restart is a pause and
// not a crash. Subjects live in subjects.ts.
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { UnavailableError } from './errors.ts';

export type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';

export interface NatsConnectOptions {
  url: string;
  /** Shown in the server's connection list, e.g. 'tandem-worker-w1'. */
  name: string;
  /** How long the first connection may take (default 5 s). */
  connectTimeoutMs?: number;
}

export async function connectNats(options: NatsConnectOptions): Promise<NatsConnection> {
  try {
    return await connect({
      servers: options.url,
      name: options.name,
      timeout: options.connectTimeoutMs ?? 5000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 10_000,
    });
  } catch (cause) {
    throw new UnavailableError(`cannot connect to NATS at ${options.url}`, { cause });
  }
}
