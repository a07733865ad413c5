// `tandem router`: flags -> RouterOptions, run until SIGINT / SIGTERM.
import { parseArgs } from 'node:util';
import {
  ConfigError,
  envString,
  isLogLevel,
  Logger,
  natsUrlFromEnv,
  parseIntStrict,
  TandemError,
} from '@tandem/common';
import { isPolicyName, policyNames } from './policy/policies.ts';
import { defaultRouterOptions, RouterApp, type RouterOptions } from './router-app.ts';

export const routerUsage = `usage: tandem router --model DIR [options]

  --model DIR                  the checkpoint folder the workers serve (tokenizer, chat template)
  --port N                     HTTP port (default 8000; 0 picks a free one)
  --host ADDR                  listen address (default 127.0.0.1)
  --policy NAME                ${policyNames.join(' | ')} (default cache_aware)
  --served-model-name NAME     the model name clients use (default the folder's name)
  --nats URL                   default $NATS_URL or nats://127.0.0.1:4222
  --redis URL|none             default $REDIS_URL or redis://127.0.0.1:6379; none: no shared state
  --replica-id ID              unique per router replica (default random)
  --seed N                     seed of the random / power_of_two policies (default 0)
  --max-concurrent N           admitted requests at once (default 256)
  --max-queued N               requests waiting beyond that before 429 (default 1024)
  --request-timeout-s N        per-request deadline (default 600)
  --disagg-threshold N         decode workers prefill locally when fewer than N prompt tokens are
                               uncached on them; else the router names a prefill worker (default 0:
                               every prompt goes through one when the router knows one)
  --log-level debug|info|warn|error   (debug logs every routing decision)
`;

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      model: { type: 'string' },
      port: { type: 'string', default: '8000' },
      host: { type: 'string', default: '127.0.0.1' },
      policy: { type: 'string', default: 'cache_aware' },
      'served-model-name': { type: 'string' },
      nats: { type: 'string' },
      redis: { type: 'string' },
      'replica-id': { type: 'string' },
      seed: { type: 'string', default: '0' },
      'max-concurrent': { type: 'string' },
      'max-queued': { type: 'string' },
      'request-timeout-s': { type: 'string' },
      'disagg-threshold': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

export function routerOptionsFromArgv(argv: string[], logger: Logger): RouterOptions {
  const { values } = parse(argv);
  if (values.model === undefined) throw new ConfigError('--model DIR is required', { param: '--model' });
  const policy = values.policy ?? 'cache_aware';
  if (!isPolicyName(policy)) {
    throw new ConfigError(`--policy must be one of ${policyNames.join(', ')}, got '${policy}'`, {
      param: '--policy',
    });
  }
  const redisFlag = values.redis ?? envString('REDIS_URL', 'redis://127.0.0.1:6379');
  const admission = { ...defaultRouterOptions.admission };
  if (values['max-concurrent'] !== undefined) {
    admission.maxConcurrent = parseIntStrict(values['max-concurrent'], '--max-concurrent', { min: 1 });
  }
  if (values['max-queued'] !== undefined) {
    admission.maxQueued = parseIntStrict(values['max-queued'], '--max-queued', { min: 0 });
  }
  return {
    ...defaultRouterOptions,
    modelDir: values.model,
    servedModelName: values['served-model-name'] ?? null,
    host: values.host ?? '127.0.0.1',
    port: parseIntStrict(values.port ?? '8000', '--port', { min: 0, max: 65535 }),
    policy,
    natsUrl: values.nats ?? natsUrlFromEnv(),
    redisUrl: redisFlag === 'none' ? null : redisFlag,
    replicaId: values['replica-id'] ?? null,
    seed: parseIntStrict(values.seed ?? '0', '--seed'),
    admission,
    requestTimeoutMs:
      values['request-timeout-s'] === undefined
        ? defaultRouterOptions.requestTimeoutMs
        : parseIntStrict(values['request-timeout-s'], '--request-timeout-s', { min: 1 }) * 1000,
    disaggThreshold: parseIntStrict(values['disagg-threshold'] ?? '0', '--disagg-threshold', { min: 0 }),
    logger,
  };
}

export async function runRouterCommand(argv: string[]): Promise<number> {
  let help = false;
  let level = envString('LOG_LEVEL', 'info');
  try {
    const { values } = parse(argv);
    help = values.help === true;
    level = values['log-level'] ?? level;
  } catch (error) {
    process.stderr.write(`tandem router: ${(error as Error).message}\n${routerUsage}`);
    return 2;
  }
  if (help) {
    process.stdout.write(routerUsage);
    return 0;
  }
  const logger = new Logger({ level: isLogLevel(level) ? level : 'info', fields: { service: 'router' } });
  let app: RouterApp;
  try {
    app = await RouterApp.start(routerOptionsFromArgv(argv, logger));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(
      `tandem router: ${error instanceof TandemError ? `${error.name}: ` : ''}${message}\n`,
    );
    return error instanceof ConfigError ? 2 : 1;
  }
  process.stdout.write(`tandem router: serving ${app.url}/v1\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await app.close();
  return 0;
}
