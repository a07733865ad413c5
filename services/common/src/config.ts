// Environment helpers and the local stack's default URLs (options.ts declares commands' flags).
import { ConfigError } from './errors.ts';

/** The variable's value, or `fallback` when unset or empty. */
export function envString(name: string, fallback: string): string;
export function envString(name: string, fallback: null): string | null;
export function envString(name: string, fallback: string | null): string | null {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : value;
}

/** host:port of a URL such as nats://127.0.0.1:4222 or redis://h:6379/0 (default port when absent). */
export function hostPortOf(url: string, defaultPort: number): { host: string; port: number } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new ConfigError(`not a URL: '${url}'`, { cause });
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  return { host, port: parsed.port === '' ? defaultPort : Number(parsed.port) };
}

/** Default URLs for the local stack (overridden by NATS_URL / REDIS_URL). */
export const defaultNatsUrl = 'nats://127.0.0.1:4222';
export const defaultRedisUrl = 'redis://127.0.0.1:6379';

export function natsUrlFromEnv(): string {
  return envString('NATS_URL', defaultNatsUrl);
}

export function redisUrlFromEnv(): string {
  return envString('REDIS_URL', defaultRedisUrl);
}

/** A URL fit for logs: its user and password replaced. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = parsed.username === '' ? '' : '***';
    parsed.password = parsed.password === '' ? '' : '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}
