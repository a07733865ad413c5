// Client API keys: from --api-key (repeatable), $TANDEM_API_KEYS (comma-separated) and
// --api-key-file (one key a line, optionally with its own limits), each with per-key limits:
// requests per minute, tokens per minute, requests at once (0: unlimited). Keys are kept and
// looked up by their SHA-256, so a lookup's timing says nothing about a key's characters, and
// logs, metrics and Redis see only a short id (the digest's first 16 hex digits).
//
// Key file lines:   KEY [rpm=N] [tpm=N] [concurrency=N]    (# starts a comment)
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '@tandem/common';

/** The limits of one key (0: unlimited). */
export interface KeyLimits {
  requestsPerMinute: number;
  tokensPerMinute: number;
  maxConcurrent: number;
}

export const unlimitedKey: KeyLimits = { requestsPerMinute: 0, tokensPerMinute: 0, maxConcurrent: 0 };

/** A client key as the router knows it: never the key itself. */
export interface ApiKeyPolicy {
  /** First 16 hex digits of the key's SHA-256 (logs, Redis keys). */
  id: string;
  limits: KeyLimits;
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export class ApiKeyTable {
  readonly #byDigest = new Map<string, ApiKeyPolicy>();

  /** `keys`: each key with its limits (later entries of one key win). */
  constructor(keys: readonly { key: string; limits: KeyLimits }[]) {
    for (const { key, limits } of keys) {
      const hash = digest(key);
      this.#byDigest.set(hash.toString('hex'), { id: hash.toString('hex').slice(0, 16), limits });
    }
  }

  get size(): number {
    return this.#byDigest.size;
  }

  /** The policy of a presented key, or null when it is not one of ours. */
  lookup(key: string): ApiKeyPolicy | null {
    return this.#byDigest.get(digest(key).toString('hex')) ?? null;
  }
}

/** The key of an `Authorization: Bearer <key>` header, or null. */
export function bearerKey(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

/** Keys from flags / environment (default limits) and from a key file (its own limits, if any). */
export function loadApiKeys(
  keys: readonly string[],
  keyFile: string | null,
  defaults: KeyLimits,
): { key: string; limits: KeyLimits }[] {
  const loaded = keys.map((key) => ({ key, limits: defaults }));
  if (keyFile !== null) loaded.push(...parseKeyFile(readKeyFile(keyFile), defaults, keyFile));
  return loaded;
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`--api-key-file ${path}: cannot read it`, { cause, param: '--api-key-file' });
  }
}

const limitNames: Record<string, keyof KeyLimits> = {
  rpm: 'requestsPerMinute',
  tpm: 'tokensPerMinute',
  concurrency: 'maxConcurrent',
};

export function parseKeyFile(
  text: string,
  defaults: KeyLimits,
  source = 'the key file',
): { key: string; limits: KeyLimits }[] {
  const keys: { key: string; limits: KeyLimits }[] = [];
  text.split('\n').forEach((rawLine, i) => {
    const line = rawLine.replace(/#.*/, '').trim();
    if (line === '') return;
    const [key, ...fields] = line.split(/\s+/);
    const limits: KeyLimits = { ...defaults };
    for (const field of fields) {
      const match = /^(rpm|tpm|concurrency)=(\d+)$/.exec(field);
      const name = match === null ? undefined : limitNames[match[1]!];
      if (match === null || name === undefined) {
        throw new ConfigError(`${source} line ${i + 1}: '${field}' is not rpm=N, tpm=N or concurrency=N`, {
          param: '--api-key-file',
        });
      }
      limits[name] = Number(match[2]);
    }
    keys.push({ key: key!, limits });
  });
  return keys;
}
