// In-flight request counts per worker, shared by router replicas through Redis so they do not
// all pick the same idle worker. Each replica keeps its own hash (tandem:inflight:<replica>, with
// a TTL) and a score in a replica set; one Lua script call writes our counts for the workers that
// changed (absolute, so a lost update is repaired by the next one and by the periodic full
// refresh) and returns the totals over the live replicas; a crashed replica's counts vanish with
// its TTL. Changes wait `coalesceMs` for others to join them: one call per few milliseconds
// however busy the router is, and a short request that starts and ends inside the window costs
// no Redis call at all (its worker's count is back where Redis has it). Without Redis the counts
// are this router's own.
import type { Logger, Redis } from '@tandem/common';

const replicaSetKey = 'tandem:routers';

// KEYS[1]: replica set. ARGV: replica id, replica ttl ms, 'set' | 'replace', then pairs of
// worker id and this replica's count there ('replace' drops workers not listed).
// Returns [workerId, total, workerId, total, ...] over live replicas.
const adjustScript = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[2])
local mine = 'tandem:inflight:' .. ARGV[1]
if ARGV[3] == 'replace' then redis.call('DEL', mine) end
for i = 4, #ARGV, 2 do
  local count = tonumber(ARGV[i + 1])
  if count > 0 then redis.call('HSET', mine, ARGV[i], count) else redis.call('HDEL', mine, ARGV[i]) end
end
redis.call('PEXPIRE', mine, ttl)
redis.call('ZADD', KEYS[1], now, ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
for _, replica in ipairs(stale) do redis.call('DEL', 'tandem:inflight:' .. replica) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
local totals = {}
for _, replica in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local fields = redis.call('HGETALL', 'tandem:inflight:' .. replica)
  for i = 1, #fields, 2 do totals[fields[i]] = (totals[fields[i]] or 0) + tonumber(fields[i + 1]) end
end
local flat = {}
for worker, total in pairs(totals) do
  flat[#flat + 1] = worker
  flat[#flat + 1] = total
end
return flat
`;

interface ScriptedRedis {
  tandemInflightAdjust(...args: string[]): Promise<unknown>;
}

export interface InflightParams {
  replicaId: string;
  /** A replica silent this long is dropped with its counts. */
  replicaTtlMs: number;
  /** How often to refresh other replicas' counts when idle. */
  refreshMs: number;
  /** How long a change waits for others to share its script call (default 5 ms). */
  coalesceMs?: number;
}

const defaultCoalesceMs = 5;

export class InflightCounts {
  readonly #redis: Redis | null;
  readonly #params: InflightParams;
  readonly #logger: Logger;
  /** This router's requests per worker. */
  readonly #local = new Map<string, number>();
  /** This router's counts as written to Redis so far (in order of the script calls). */
  readonly #sent = new Map<string, number>();
  /** Other replicas' requests per worker, as of the last reply. */
  #others = new Map<string, number>();
  /** Local plus others, per worker with any (a decision reads one map per candidate). */
  #totals = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  readonly #inFlight = new Set<Promise<void>>();
  /** Workers whose local count changed since the last write, and whether a write is scheduled. */
  readonly #dirty = new Set<string>();
  #flushScheduled = false;
  #lastSyncOk = true;

  constructor(redis: Redis | null, params: InflightParams, logger: Logger) {
    // EVALSHA with the script cached in Redis (ioredis loads it on first use): the script text
    // does not travel with every request.
    if (redis !== null && !('tandemInflightAdjust' in redis)) {
      redis.defineCommand('tandemInflightAdjust', { numberOfKeys: 1, lua: adjustScript });
    }
    this.#redis = redis;
    this.#params = params;
    this.#logger = logger;
  }

  start(): void {
    if (this.#redis === null || this.#timer !== null) return;
    void this.#sync(null);
    this.#timer = setInterval(() => void this.#sync(null), this.#params.refreshMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#redis === null) return;
    await this.settled();
    try {
      await this.#redis.del(`tandem:inflight:${this.#params.replicaId}`);
      await this.#redis.zrem(replicaSetKey, this.#params.replicaId);
    } catch {
      // Redis gone: the TTL removes our counts.
    }
  }

  /** Requests on the worker across all replicas. */
  count(workerId: string): number {
    return this.#totals.get(workerId) ?? 0;
  }

  localCount(workerId: string): number {
    return this.#local.get(workerId) ?? 0;
  }

  /** A request went to the worker (written to Redis with the changes of the next few ms). */
  acquire(workerId: string): void {
    this.#adjustLocal(workerId, 1);
    this.#schedule(workerId);
  }

  /** The request ended. */
  release(workerId: string): void {
    this.#adjustLocal(workerId, -1);
    this.#schedule(workerId);
  }

  /** Resolves once every change made so far has reached Redis and its reply is applied. */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  #schedule(workerId: string): void {
    if (this.#redis === null) return;
    this.#dirty.add(workerId);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Off the request's path: its gRPC write and the client's response go out first.
    const done: Promise<void> = new Promise<void>((resolve) =>
      setTimeout(resolve, this.#params.coalesceMs ?? defaultCoalesceMs),
    )
      .then(() => {
        this.#flushScheduled = false;
        const workers = [...this.#dirty];
        this.#dirty.clear();
        return this.#sync(workers);
      })
      .finally(() => this.#inFlight.delete(done));
    this.#inFlight.add(done);
  }

  forget(workerId: string): void {
    this.#local.delete(workerId);
    this.#others.delete(workerId);
    this.#sent.delete(workerId);
    this.#totals.delete(workerId);
    this.#dirty.delete(workerId);
  }

  /** Workers with a count of any kind (all bounded by the workers known; see forget). */
  get sizes(): {
    local: number;
    others: number;
    sent: number;
    totals: number;
    dirty: number;
    syncsInFlight: number;
  } {
    return {
      local: this.#local.size,
      others: this.#others.size,
      sent: this.#sent.size,
      totals: this.#totals.size,
      dirty: this.#dirty.size,
      syncsInFlight: this.#inFlight.size,
    };
  }

  #adjustLocal(workerId: string, delta: number): void {
    const next = (this.#local.get(workerId) ?? 0) + delta;
    if (next <= 0) this.#local.delete(workerId);
    else this.#local.set(workerId, next);
    this.#setTotal(workerId);
  }

  #setTotal(workerId: string): void {
    const total = (this.#others.get(workerId) ?? 0) + (this.#local.get(workerId) ?? 0);
    if (total > 0) this.#totals.set(workerId, total);
    else this.#totals.delete(workerId);
  }

  /**
   * Writes our counts for `workers` (those that differ from what Redis has; or, with null, our
   * whole map) and reads the totals.
   */
  async #sync(workers: readonly string[] | null): Promise<void> {
    if (this.#redis === null) return;
    const pairs: string[] = [];
    if (workers === null) {
      this.#sent.clear();
      for (const [worker, count] of this.#local) {
        this.#sent.set(worker, count);
        pairs.push(worker, String(count));
      }
    } else {
      for (const workerId of workers) {
        const count = this.#local.get(workerId) ?? 0;
        if (count === (this.#sent.get(workerId) ?? 0)) continue;
        if (count > 0) this.#sent.set(workerId, count);
        else this.#sent.delete(workerId);
        pairs.push(workerId, String(count));
      }
      // Back where Redis has them (a request started and ended in the window): nothing to write.
      if (pairs.length === 0) return;
    }
    // Our own hash equals this snapshot once Redis has run the script (calls run in order).
    const mineAfter = new Map(this.#sent);
    try {
      const reply = (await (this.#redis as unknown as ScriptedRedis).tandemInflightAdjust(
        replicaSetKey,
        this.#params.replicaId,
        String(this.#params.replicaTtlMs),
        workers === null ? 'replace' : 'set',
        ...pairs,
      )) as (string | number)[];
      const others = new Map<string, number>();
      for (let i = 0; i + 1 < reply.length; i += 2) {
        const worker = String(reply[i]);
        const total = Number(reply[i + 1]) - (mineAfter.get(worker) ?? 0);
        if (total > 0) others.set(worker, total);
      }
      this.#others = others;
      const totals = new Map(this.#local);
      for (const [worker, count] of others) totals.set(worker, (totals.get(worker) ?? 0) + count);
      this.#totals = totals;
      this.#lastSyncOk = true;
    } catch (error) {
      if (this.#lastSyncOk) this.#logger.warn('shared in-flight counts unavailable', { error });
      this.#lastSyncOk = false;
    }
  }
}
