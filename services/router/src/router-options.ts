// `tandem router`'s options, declared once (common/options.ts): flags, environment, defaults. The
// tuning numbers of the router are options too, each documented here; RouterApp takes the result.
import {
  type ClusterSecurity,
  ConfigError,
  clusterSecurityFrom,
  clusterSecurityOptions,
  defaultNatsUrl,
  defineOptions,
  type Logger,
  logLevelOption,
  type OptionValues,
} from '@tandem/common';
import { type KeyLimits, loadApiKeys } from './auth/api-keys.ts';
import { type AdmissionParams, defaultAdmissionParams } from './cluster/admission.ts';
import { type CircuitBreakerParams, defaultCircuitBreakerParams } from './cluster/circuit-breaker.ts';
import { defaultResilienceParams, type ResilienceParams } from './cluster/dispatcher.ts';
import type { ToolCallParserChoice } from './model.ts';
import {
  type CacheAwareConfig,
  defaultCacheAwareConfig,
  type PolicyName,
  policyNames,
} from './policy/policies.ts';
import { defaultPrefillPolicyParams, type PrefillPolicyParams } from './policy/prefill-policy.ts';
import { defaultSessionParams, type SessionParams } from './policy/session-affinity.ts';
import type { ProcessPeers } from './process-group.ts';
import { toolCallFormatNames } from './tools/formats.ts';

export const routerOptions = defineOptions('router', '--model DIR [--model DIR2 ...] [options]', {
  model: {
    type: 'list',
    valueName: 'DIR',
    doc: 'a checkpoint folder workers serve (tokenizer, chat template); repeat for several models, each routed by its name (required)',
  },
  port: { type: 'int', default: 8000, min: 0, max: 65535, doc: 'HTTP port (0 picks a free one)' },
  host: { type: 'string', default: '127.0.0.1', valueName: 'ADDR', doc: 'listen address' },
  policy: { type: 'string', default: 'cache_aware', choices: policyNames, doc: 'routing policy' },
  'served-model-name': {
    type: 'list',
    valueName: 'NAME',
    doc: "the name clients use for the --model of the same position (default the folder's name)",
  },
  'tool-call-parser': {
    type: 'string',
    default: 'auto',
    choices: ['auto', ...toolCallFormatNames],
    doc: "how models write tool calls: auto reads each model's chat template (Hermes <tool_call> tags, else Llama 3 JSON)",
  },
  nats: {
    type: 'string',
    default: defaultNatsUrl,
    env: 'NATS_URL',
    valueName: 'URL',
    doc: 'NATS (required)',
  },
  redis: {
    type: 'string',
    default: null,
    env: 'REDIS_URL',
    valueName: 'URL',
    doc: 'Redis for state shared by router replicas: worker leases, in-flight counts (none or unset: this replica alone)',
  },
  'replica-id': {
    type: 'string',
    default: null,
    valueName: 'ID',
    doc: 'unique per router replica (default random)',
  },
  seed: { type: 'int', default: 0, doc: 'seed of the random / power_of_two policies' },
  'api-key': {
    type: 'list',
    env: 'TANDEM_API_KEYS',
    valueName: 'KEY',
    doc: 'a client key (Authorization: Bearer KEY); any key, here or in --api-key-file, makes every /v1 route need one (401 otherwise)',
  },
  'api-key-file': {
    type: 'string',
    default: null,
    env: 'TANDEM_API_KEY_FILE',
    valueName: 'FILE',
    doc: 'client keys, one a line: KEY [rpm=N] [tpm=N] [concurrency=N] (# comments)',
  },
  'key-rpm': {
    type: 'int',
    default: 0,
    min: 0,
    doc: 'requests per minute of a key that names none (0: unlimited); shared by the replicas through Redis',
  },
  'key-tpm': {
    type: 'int',
    default: 0,
    min: 0,
    doc: 'tokens per minute (prompt + n x max_tokens, refunded what is not generated) of a key that names none (0: unlimited)',
  },
  'key-concurrency': {
    type: 'int',
    default: 0,
    min: 0,
    doc: 'requests at once of a key that names none (0: unlimited)',
  },
  'admin-key': {
    type: 'list',
    env: 'TANDEM_ADMIN_KEYS',
    valueName: 'KEY',
    doc: 'a key for GET /metrics and /debug/* (Authorization: Bearer KEY)',
  },
  'admin-access': {
    type: 'string',
    default: null,
    choices: ['open', 'key', 'off'],
    env: 'TANDEM_ADMIN_ACCESS',
    doc: '/metrics and /debug/*: open to anyone, only with an --admin-key, or off (404) (default: open without client keys, key with them)',
  },
  'max-concurrent': {
    type: 'int',
    default: defaultAdmissionParams.maxConcurrent,
    min: 1,
    doc: 'admitted requests at once',
  },
  'max-queued': {
    type: 'int',
    default: defaultAdmissionParams.maxQueued,
    min: 0,
    doc: 'requests waiting beyond that before 429',
  },
  'retry-after-ms': {
    type: 'int',
    default: defaultAdmissionParams.retryAfterMs,
    min: 0,
    doc: 'Retry-After of a 429 from a full admission queue',
  },
  'max-running-cost': {
    type: 'int',
    default: defaultAdmissionParams.maxRunningCost,
    min: 1,
    doc: 'cost of the admitted requests at once: prompt tokens + n x max_tokens x (1 + logprob entries per token); a costlier request runs alone',
  },
  'queue-timeout-ms': {
    type: 'int',
    default: defaultAdmissionParams.queueTimeoutMs,
    min: 1,
    doc: 'longest wait for admission (then 503 queue_timeout)',
  },
  'body-timeout-ms': {
    type: 'int',
    default: 30_000,
    min: 100,
    doc: 'a client must send its headers and whole body within this (408 and the connection closed after)',
  },
  'request-timeout-s': { type: 'int', default: 600, min: 1, doc: 'per-request deadline' },
  'disagg-threshold': {
    type: 'int',
    default: defaultPrefillPolicyParams.disaggThreshold,
    min: 0,
    doc: 'decode workers prefill locally when fewer than N prompt tokens are uncached on them; else the router names a prefill worker (0: every prompt goes through one when the router knows one)',
  },
  'max-attempts': {
    type: 'int',
    default: 3,
    min: 1,
    doc: 'tries per request before its first token, each on another worker',
  },
  'retry-backoff-ms': {
    type: 'int',
    default: defaultResilienceParams.retryBackoffMs,
    min: 0,
    doc: 'a retry waits a random time below this x 2^(failures - 1) ms (full jitter) ...',
  },
  'retry-backoff-max-ms': {
    type: 'int',
    default: defaultResilienceParams.retryBackoffMaxMs,
    min: 0,
    doc: '... and below this',
  },
  'first-byte-timeout-ms': {
    type: 'int',
    default: defaultResilienceParams.firstByteTimeoutMs,
    min: 1,
    doc: "an attempt without a first token after this (plus 4x its predicted prefill time) fails and is retried elsewhere; the worker's breaker counts it",
  },
  'hedge-after-ms': {
    type: 'int',
    default: defaultResilienceParams.hedgeAfterMs,
    min: 0,
    doc: 'an attempt without a first token after this (plus 2x its predicted prefill time) gets a twin on another worker (another prefill worker for a decode worker); the first to answer wins (0: no hedging)',
  },
  'suspect-after-ms': {
    type: 'int',
    default: defaultResilienceParams.suspectAfterMs,
    min: 1,
    doc: 'a worker not heard from (heartbeat, load report) this long is picked only when no other is left',
  },
  'max-failovers': {
    type: 'int',
    default: defaultResilienceParams.maxFailovers,
    min: 0,
    doc: 'workers that may fail mid-stream per prompt, each replaced by another that continues from the tokens already sent (0: the request fails)',
  },
  'breaker-failures': {
    type: 'int',
    default: defaultCircuitBreakerParams.failureThreshold,
    min: 1,
    doc: "consecutive failures that open a worker's circuit breaker",
  },
  'breaker-successes': {
    type: 'int',
    default: defaultCircuitBreakerParams.successThreshold,
    min: 1,
    doc: 'good probes in a row (requests or health checks) that close a half-open circuit',
  },
  'breaker-open-ms': {
    type: 'int',
    default: defaultCircuitBreakerParams.openMs,
    min: 1,
    doc: 'how long an open breaker keeps traffic off before a probe',
  },
  'health-check-ms': {
    type: 'int',
    default: 1000,
    min: 10,
    doc: 'period of the Health calls to workers whose circuit is half-open (each SERVING is one good probe) and of the expiry sweep',
  },
  'optimistic-ttl-ms': {
    type: 'int',
    default: 3000,
    min: 1,
    doc: "life of the index entries a routed prompt adds until the worker's KV events confirm them",
  },
  'default-prefill-rate': {
    type: 'number',
    default: 2,
    min: 0.001,
    doc: 'prefill tokens per ms assumed for a worker before any measurement',
  },
  'prefill-rate-alpha': {
    type: 'number',
    default: 0.2,
    min: 0,
    max: 1,
    doc: 'weight of a new time-to-first-token measurement in the prefill-rate EWMA',
  },
  'duplicate-prefill-weight': {
    type: 'number',
    default: defaultCacheAwareConfig.duplicatePrefillWeight,
    min: 0,
    doc: 'cache_aware: price of recomputing a prefix another worker holds (README: Routing)',
  },
  'balance-abs-threshold': {
    type: 'number',
    default: defaultCacheAwareConfig.balanceAbsThreshold,
    min: 0,
    doc: "cache_aware: least load only while the most loaded worker has more than this many requests over the least (SGLang's balance_abs_threshold)",
  },
  'balance-rel-threshold': {
    type: 'number',
    default: defaultCacheAwareConfig.balanceRelThreshold,
    min: 1,
    doc: "cache_aware: ...and more than this times the least's load (SGLang's balance_rel_threshold)",
  },
  'session-capacity': {
    type: 'int',
    default: defaultSessionParams.capacity,
    min: 0,
    doc: 'sessions (x-session-id / x-routing-key header or the `user` field) kept sticky to their worker; 0: no session affinity',
  },
  'session-ttl-ms': {
    type: 'int',
    default: defaultSessionParams.ttlMs,
    min: 1,
    doc: 'a session idle this long is forgotten (its next request is routed afresh)',
  },
  'priority-weights': {
    type: 'string',
    default: `${defaultAdmissionParams.priorityWeights.high},${defaultAdmissionParams.priorityWeights.normal},${defaultAdmissionParams.priorityWeights.low}`,
    valueName: 'H,N,L',
    doc: 'shares of admissions of the x-priority classes high, normal, low while several wait (low is slowed, never starved)',
  },
  'worker-lease-ttl-ms': {
    type: 'int',
    default: 10_000,
    min: 100,
    doc: 'silence after which a worker whose announcement named no TTL is dropped (if its lease is gone)',
  },
  'inflight-refresh-ms': {
    type: 'int',
    default: 500,
    min: 10,
    doc: 'period of the full refresh of in-flight counts shared through Redis',
  },
  'replica-ttl-ms': {
    type: 'int',
    default: 10_000,
    min: 100,
    doc: "a crashed replica's in-flight counts expire from Redis after this long",
  },
  'max-body-bytes': {
    type: 'int',
    default: 32 * 1024 * 1024,
    min: 1024,
    doc: 'largest request body accepted (413 beyond)',
  },
  'no-metrics': {
    type: 'boolean',
    default: false,
    env: 'TANDEM_NO_METRICS',
    doc: 'record no metrics (GET /metrics is empty): the baseline the metrics cost is measured against',
  },
  'tokenize-threads': {
    type: 'int',
    default: 2,
    min: 0,
    doc: 'worker threads that tokenize long prompts off the event loop (0: tokenize on it)',
  },
  processes: {
    type: 'int',
    default: 1,
    min: 1,
    max: 256,
    doc: 'router processes sharing the port (node:cluster), each a replica (id <replica-id>-p<i>) sharing state through Redis and NATS; /metrics and /debug/routing answer for all of them',
  },
  'decision-log-size': {
    type: 'int',
    default: 10_000,
    min: 0,
    doc: 'routing decisions kept for GET /debug/routing/{request_id}',
  },
  ...clusterSecurityOptions,
  ...logLevelOption,
});

export type RouterValues = OptionValues<typeof routerOptions.specs>;

/** Who may use /metrics and /debug/*. */
export type AdminAccess = 'open' | 'key' | 'off';

/** A served model: its checkpoint folder and the name clients use (null: the folder's name). */
export interface ServedModelOption {
  dir: string;
  servedName: string | null;
}

export interface RouterOptions {
  /** The models served, each routed by its name (at least one). */
  models: ServedModelOption[];
  /** How models write tool calls ('auto': from each chat template). */
  toolCallParser: ToolCallParserChoice;
  host: string;
  /** 0: any free port. */
  port: number;
  policy: PolicyName;
  natsUrl: string;
  /** null: no Redis (no lease discovery, in-flight counts are this router's only). */
  redisUrl: string | null;
  /** Unique per replica (default: random). */
  replicaId: string | null;
  cacheAware: CacheAwareConfig;
  /** Session affinity's table, or null: none. */
  sessions: SessionParams | null;
  admission: AdmissionParams;
  breaker: CircuitBreakerParams;
  /** Period of the health checks of half-open workers and of the expiry sweep. */
  healthCheckMs: number;
  /** How long an optimistic index entry lives without a confirming event. */
  optimisticTtlMs: number;
  maxAttempts: number;
  /** Backoff, first-byte deadline, hedging, suspect workers, mid-stream failover. */
  resilience: ResilienceParams;
  requestTimeoutMs: number;
  /** Seed of the policies' random source. */
  seed: number;
  /** Client keys and their limits (empty: the /v1 routes are open). */
  apiKeys: { key: string; limits: KeyLimits }[];
  /** The cluster secret and gRPC TLS: workers must prove membership before they get traffic. */
  security: ClusterSecurity;
  /** Keys for /metrics and /debug/* when adminAccess is 'key'. */
  adminKeys: string[];
  adminAccess: AdminAccess;
  decisionLogSize: number;
  defaultPrefillTokensPerMs: number;
  /** Weight of a new measurement in the prefill-rate EWMA. */
  prefillRateAlpha: number;
  /** Silence after which a worker whose announcement named no lease TTL is dropped. */
  defaultLeaseTtlMs: number;
  /** Full refresh period of the in-flight counts shared through Redis. */
  inflightRefreshMs: number;
  /** A crashed replica's in-flight counts expire after this long. */
  replicaTtlMs: number;
  /** Largest request body accepted. */
  maxBodyBytes: number;
  /** Headers and body must arrive within this. */
  bodyTimeoutMs: number;
  /** Threads tokenizing long prompts off the event loop. */
  tokenizeThreads: number;
  /**
   * Conditional disaggregation: a decode worker prefills locally when fewer than this many prompt
   * tokens are uncached on it; otherwise the router names a prefill worker (0: always one).
   */
  disaggThreshold: number;
  /** The prefill-worker choice's transfer rates and tie tolerances. */
  prefillChoice: Omit<PrefillPolicyParams, 'disaggThreshold'>;
  /** false: record no metrics. */
  metricsEnabled: boolean;
  logger: Logger;
  /** This router is one process of a `--processes N` group (null or absent: alone). */
  processGroup?: ProcessPeers | null;
}

/** RouterOptions from the declared options (the only place flags become RouterOptions). */
export function routerOptionsFrom(values: RouterValues, logger: Logger): RouterOptions {
  if (values.model.length === 0) throw new ConfigError('--model DIR is required', { param: '--model' });
  const names = values['served-model-name'];
  if (names.length > values.model.length) {
    throw new ConfigError('more --served-model-name flags than --model flags', {
      param: '--served-model-name',
    });
  }
  return {
    ...defaultsFrom(values),
    models: values.model.map((dir, i) => ({ dir, servedName: names[i] ?? null })),
    logger,
  };
}

function defaultsFrom(values: RouterValues): Omit<RouterOptions, 'models' | 'logger'> {
  const apiKeys = loadApiKeys(values['api-key'], values['api-key-file'], {
    requestsPerMinute: values['key-rpm'],
    tokensPerMinute: values['key-tpm'],
    maxConcurrent: values['key-concurrency'],
  });
  return {
    apiKeys,
    security: clusterSecurityFrom(values),
    adminKeys: values['admin-key'],
    adminAccess: values['admin-access'] ?? (apiKeys.length > 0 ? 'key' : 'open'),
    toolCallParser: values['tool-call-parser'],
    host: values.host,
    port: values.port,
    policy: values.policy,
    natsUrl: values.nats,
    redisUrl: values.redis === 'none' ? null : values.redis,
    replicaId: values['replica-id'],
    cacheAware: {
      ...defaultCacheAwareConfig,
      duplicatePrefillWeight: values['duplicate-prefill-weight'],
      balanceAbsThreshold: values['balance-abs-threshold'],
      balanceRelThreshold: values['balance-rel-threshold'],
    },
    sessions:
      values['session-capacity'] === 0
        ? null
        : { capacity: values['session-capacity'], ttlMs: values['session-ttl-ms'] },
    admission: {
      maxConcurrent: values['max-concurrent'],
      maxQueued: values['max-queued'],
      retryAfterMs: values['retry-after-ms'],
      maxRunningCost: values['max-running-cost'],
      queueTimeoutMs: values['queue-timeout-ms'],
      priorityWeights: parsePriorityWeights(values['priority-weights']),
    },
    bodyTimeoutMs: values['body-timeout-ms'],
    breaker: {
      failureThreshold: values['breaker-failures'],
      openMs: values['breaker-open-ms'],
      successThreshold: values['breaker-successes'],
    },
    healthCheckMs: values['health-check-ms'],
    optimisticTtlMs: values['optimistic-ttl-ms'],
    maxAttempts: values['max-attempts'],
    resilience: {
      retryBackoffMs: values['retry-backoff-ms'],
      retryBackoffMaxMs: values['retry-backoff-max-ms'],
      firstByteTimeoutMs: values['first-byte-timeout-ms'],
      hedgeAfterMs: values['hedge-after-ms'],
      suspectAfterMs: values['suspect-after-ms'],
      maxFailovers: values['max-failovers'],
    },
    requestTimeoutMs: values['request-timeout-s'] * 1000,
    seed: values.seed,
    decisionLogSize: values['decision-log-size'],
    defaultPrefillTokensPerMs: values['default-prefill-rate'],
    prefillRateAlpha: values['prefill-rate-alpha'],
    defaultLeaseTtlMs: values['worker-lease-ttl-ms'],
    inflightRefreshMs: values['inflight-refresh-ms'],
    replicaTtlMs: values['replica-ttl-ms'],
    maxBodyBytes: values['max-body-bytes'],
    tokenizeThreads: values['tokenize-threads'],
    disaggThreshold: values['disagg-threshold'],
    prefillChoice: defaultPrefillPolicyParams,
    metricsEnabled: !values['no-metrics'],
  };
}

/** Every option at its declared default (what an embedding, like `tandem up`, starts from). */
export const defaultRouterOptions = defaultsFrom(routerOptions.parse([], {}));

/** "H,N,L": three positive numbers, the admission shares of high, normal and low. */
function parsePriorityWeights(text: string): AdmissionParams['priorityWeights'] {
  const parts = text.split(',').map((part) => Number(part.trim()));
  if (parts.length !== 3 || parts.some((w) => !(Number.isFinite(w) && w > 0)))
    throw new ConfigError(`--priority-weights must be three positive numbers H,N,L (got '${text}')`);
  return { high: parts[0]!, normal: parts[1]!, low: parts[2]! };
}
