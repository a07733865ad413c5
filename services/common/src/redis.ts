// Redis (ioredis): connect eagerly with a bounded first attempt, then reconnect forever.
import { Redis } from 'ioredis';
import { redactUrl } from './config.ts';
import { UnavailableError } from './errors.ts';

export type { Redis } from 'ioredis';

export interface RedisConnectOptions {
  url: string;
  /** Client name (CLIENT SETNAME), e.g. 'tandem-worker-w1'. */
  name: string;
  /** How long the first connection may take (default 5 s). */
  connectTimeoutMs?: number;
}

export async function connectRedis(options: RedisConnectOptions): Promise<Redis> {
  const redis = new Redis(options.url, {
    lazyConnect: true,
    connectionName: options.name,
    connectTimeout: options.connectTimeoutMs ?? 5000,
    maxRetriesPerRequest: 2,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
  });
  // ioredis emits 'error' on every failed reconnect; the caller sees failures on its commands.
  redis.on('error', () => {});
  try {
    await redis.connect();
  } catch (cause) {
    redis.disconnect();
    throw new UnavailableError(`cannot connect to Redis at ${redactUrl(options.url)}`, { cause });
  }
  return redis;
}
