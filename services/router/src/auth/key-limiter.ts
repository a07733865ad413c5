// Per-key limits that every router replica enforces together: a token bucket for requests per
// minute, one for tokens per minute (a request is charged its prompt plus n x max_tokens up front
// and refunded what it did not generate), and a cap on requests at once. The state lives in Redis
// (tandem:key:<id>:bucket, a hash; tandem:key:<id>:running, a sorted set of running requests
// scored by the time their slot lapses, so a crashed replica's slots free themselves): one script
// call when a request is admitted, one when it ends. Without Redis, or while it is unreachable,
// the same buckets are kept in this process (this replica's share only).
import { type Logger, type Redis, ResourceExhaustedError } from '@tandem/common';
import { InvalidRequestError } from '../errors.ts';
import type { ApiKeyPolicy, KeyLimits } from './api-keys.ts';

/** A key over one of its limits: 429 with Retry-After. */
export class KeyLimitError extends ResourceExhaustedError {
  constructor(message: string, retryAfterMs: number) {
    super(message, { reason: 'rate_limit_exceeded', retryAfterMs });
  }
}

/** An admitted request's hold on its key's limits. */
export interface KeyGrant {
  /** The request ended having used `numTokens` (prompt + generated): refund the rest, free its slot. */
  release(numTokens: number): void;
}

// KEYS: bucket hash, running set. ARGV: rpm, tpm, cap, tokens, member, slot lease ms.
// Returns {1} or {0, limit, retry-after ms}.
const acquireScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local lease = tonumber(ARGV[6])
local state = redis.call('HMGET', KEYS[1], 'req', 'tok', 'at')
local req = tonumber(state[1]) or rpm
local tok = tonumber(state[2]) or tpm
local at = tonumber(state[3]) or now
local elapsed = math.max(0, now - at)
if rpm > 0 then req = math.min(rpm, req + elapsed * rpm / 60000) end
if tpm > 0 then tok = math.min(tpm, tok + elapsed * tpm / 60000) end
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= cap then return {0, 'concurrency', 1000} end
end
if rpm > 0 and req < 1 then return {0, 'requests', math.ceil((1 - req) * 60000 / rpm)} end
if tpm > 0 and tok < tokens then return {0, 'tokens', math.ceil((tokens - tok) * 60000 / tpm)} end
if rpm > 0 then req = req - 1 end
if tpm > 0 then tok = tok - tokens end
redis.call('HSET', KEYS[1], 'req', tostring(req), 'tok', tostring(tok), 'at', now)
redis.call('PEXPIRE', KEYS[1], 120000)
if cap > 0 then
  redis.call('ZADD', KEYS[2], now + lease, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], lease)
end
return {1}
`;

// KEYS: bucket hash, running set. ARGV: tpm, tokens to refund, member ('' when no slot).
const releaseScript = `
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end
local tpm = tonumber(ARGV[1])
local refund = tonumber(ARGV[2])
if tpm > 0 and refund > 0 then
  local tok = tonumber(redis.call('HGET', KEYS[1], 'tok'))
  if tok ~= nil then redis.call('HSET', KEYS[1], 'tok', tostring(math.min(tpm, tok + refund))) end
end
return 1
`;

interface ScriptedRedis {
  tandemKeyAcquire(...args: string[]): Promise<unknown>;
  tandemKeyRelease(...args: string[]): Promise<unknown>;
}

type Verdict =
  | { ok: true }
  | { ok: false; limit: 'requests' | 'tokens' | 'concurrency'; retryAfterMs: number };

/** Every this many acquires, idle keys' local state is dropped. */
const pruneEvery = 1024;
/** A bucket idle this long is full again (both limits are per minute). */
const refillMs = 60_000;

/** The same buckets in this process (no Redis, or Redis unreachable). */
class LocalBuckets {
  readonly #state = new Map<
    string,
    { req: number; tok: number; atMs: number; running: Map<string, number> }
  >();

  readonly #clock: () => number;
  #numAcquires = 0;

  constructor(clock: () => number) {
    this.#clock = clock;
  }

  get numKeys(): number {
    return this.#state.size;
  }

  get numRunning(): number {
    let count = 0;
    for (const state of this.#state.values()) count += state.running.size;
    return count;
  }

  acquire(id: string, limits: KeyLimits, tokens: number, member: string, leaseMs: number): Verdict {
    const nowMs = this.#clock();
    if (++this.#numAcquires % pruneEvery === 0) this.#prune(nowMs);
    const { requestsPerMinute: rpm, tokensPerMinute: tpm, maxConcurrent: cap } = limits;
    let state = this.#state.get(id);
    if (state === undefined) {
      state = { req: rpm, tok: tpm, atMs: nowMs, running: new Map() };
      this.#state.set(id, state);
    }
    const elapsedMs = Math.max(0, nowMs - state.atMs);
    if (rpm > 0) state.req = Math.min(rpm, state.req + (elapsedMs * rpm) / 60_000);
    if (tpm > 0) state.tok = Math.min(tpm, state.tok + (elapsedMs * tpm) / 60_000);
    state.atMs = nowMs;
    if (cap > 0) {
      for (const [running, lapsesAtMs] of state.running)
        if (lapsesAtMs <= nowMs) state.running.delete(running);
      if (state.running.size >= cap) return { ok: false, limit: 'concurrency', retryAfterMs: 1000 };
    }
    if (rpm > 0 && state.req < 1) {
      return { ok: false, limit: 'requests', retryAfterMs: Math.ceil(((1 - state.req) * 60_000) / rpm) };
    }
    if (tpm > 0 && state.tok < tokens) {
      return { ok: false, limit: 'tokens', retryAfterMs: Math.ceil(((tokens - state.tok) * 60_000) / tpm) };
    }
    if (rpm > 0) state.req -= 1;
    if (tpm > 0) state.tok -= tokens;
    if (cap > 0) state.running.set(member, nowMs + leaseMs);
    return { ok: true };
  }

  /**
   * Forgets keys idle for a minute with nothing running: their buckets have refilled, so a fresh
   * state is the same (keys seen once would otherwise stay for the life of the process).
   */
  #prune(nowMs: number): void {
    for (const [id, state] of this.#state) {
      for (const [running, lapsesAtMs] of state.running)
        if (lapsesAtMs <= nowMs) state.running.delete(running);
      if (state.running.size === 0 && nowMs - state.atMs >= refillMs) this.#state.delete(id);
    }
  }

  release(id: string, limits: KeyLimits, refund: number, member: string): void {
    const state = this.#state.get(id);
    if (state === undefined) return;
    state.running.delete(member);
    if (limits.tokensPerMinute > 0 && refund > 0) {
      state.tok = Math.min(limits.tokensPerMinute, state.tok + refund);
    }
  }
}

export interface KeyLimiterParams {
  replicaId: string;
  /** A running request's slot lapses after this long (its replica may have crashed). */
  slotLeaseMs: number;
  /** Unix ms for the in-process buckets (default Date.now; Redis has its own clock). */
  clock?: () => number;
}

const limitNames = {
  requests: 'requests per minute',
  tokens: 'tokens per minute',
  concurrency: 'requests at once',
};

export class KeyLimiter {
  readonly #redis: Redis | null;
  readonly #params: KeyLimiterParams;
  readonly #logger: Logger;
  readonly #local: LocalBuckets;
  #requestSeq = 0;
  #redisDown = false;

  /** Keys with state in this process, and their running requests (bounded: idle keys are pruned). */
  get numLocalKeys(): number {
    return this.#local.numKeys;
  }

  get numLocalRunning(): number {
    return this.#local.numRunning;
  }

  constructor(redis: Redis | null, params: KeyLimiterParams, logger: Logger) {
    if (redis !== null && !('tandemKeyAcquire' in redis)) {
      redis.defineCommand('tandemKeyAcquire', { numberOfKeys: 2, lua: acquireScript });
      redis.defineCommand('tandemKeyRelease', { numberOfKeys: 2, lua: releaseScript });
    }
    this.#redis = redis;
    this.#params = params;
    this.#logger = logger;
    this.#local = new LocalBuckets(params.clock ?? Date.now);
  }

  /**
   * Charges a request of `numTokens` (prompt + n x max_tokens) to its key; throws KeyLimitError
   * (429) when the key is over a limit, InvalidRequestError when the request alone is larger than
   * the key's tokens per minute.
   */
  async acquire(key: ApiKeyPolicy, numTokens: number): Promise<KeyGrant> {
    const { limits } = key;
    if (limits.requestsPerMinute === 0 && limits.tokensPerMinute === 0 && limits.maxConcurrent === 0) {
      return { release: () => {} };
    }
    if (limits.tokensPerMinute > 0 && numTokens > limits.tokensPerMinute) {
      throw new InvalidRequestError(
        `the request may use ${numTokens} tokens (prompt + n x max_tokens), more than this key's ` +
          `${limits.tokensPerMinute} tokens per minute; lower max_tokens or n`,
        'max_tokens',
      );
    }
    const member = `${this.#params.replicaId}:${++this.#requestSeq}`;
    let verdict: Verdict | null = null;
    let shared = false;
    if (this.#redis !== null) {
      verdict = await this.#acquireShared(this.#redis, key, numTokens, member);
      shared = verdict !== null;
    }
    verdict ??= this.#local.acquire(key.id, limits, numTokens, member, this.#params.slotLeaseMs);
    if (!verdict.ok) {
      throw new KeyLimitError(
        `Rate limit reached for this API key on ${limitNames[verdict.limit]}; retry after ${Math.ceil(verdict.retryAfterMs / 1000)} s`,
        verdict.retryAfterMs,
      );
    }
    let released = false;
    return {
      release: (numTokensUsed) => {
        if (released) return;
        released = true;
        const refund = Math.max(0, numTokens - numTokensUsed);
        if (shared) void this.#releaseShared(key, refund, member);
        else this.#local.release(key.id, limits, refund, member);
      },
    };
  }

  /** The shared verdict, or null when Redis cannot be asked. */
  async #acquireShared(
    redis: Redis,
    key: ApiKeyPolicy,
    numTokens: number,
    member: string,
  ): Promise<Verdict | null> {
    const { limits } = key;
    try {
      const reply = (await (redis as unknown as ScriptedRedis).tandemKeyAcquire(
        `tandem:key:${key.id}:bucket`,
        `tandem:key:${key.id}:running`,
        String(limits.requestsPerMinute),
        String(limits.tokensPerMinute),
        String(limits.maxConcurrent),
        String(numTokens),
        member,
        String(this.#params.slotLeaseMs),
      )) as [number, string?, number?];
      this.#redisDown = false;
      if (reply[0] === 1) return { ok: true };
      return {
        ok: false,
        limit: reply[1] as 'requests' | 'tokens' | 'concurrency',
        retryAfterMs: Number(reply[2] ?? 1000),
      };
    } catch (error) {
      if (!this.#redisDown)
        this.#logger.warn('shared key limits unavailable; this replica limits alone', { error });
      this.#redisDown = true;
      return null;
    }
  }

  async #releaseShared(key: ApiKeyPolicy, refund: number, member: string): Promise<void> {
    try {
      await (this.#redis as unknown as ScriptedRedis).tandemKeyRelease(
        `tandem:key:${key.id}:bucket`,
        `tandem:key:${key.id}:running`,
        String(key.limits.tokensPerMinute),
        String(refund),
        key.limits.maxConcurrent > 0 ? member : '',
      );
    } catch {
      // The slot lapses on its own (its score).
    }
  }
}
