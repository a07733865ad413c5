// `tandem worker`: flags -> engine -> unified worker, until SIGTERM / SIGINT. The CLI's
// commands/worker.ts is a thin wrapper around runWorkerCommand.
import { hostname } from 'node:os';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, envString, isLogLevel, Logger, parseIntStrict, TandemError } from '@tandem/common';
import { Engine, type SchedulerOptions } from '@tandem/runtime';
import { decodeRoleExtras, prefillRoleExtras } from './pd/roles.ts';
import { startUnifiedWorker } from './unified-worker.ts';

export const workerUsage = `usage: tandem worker --role unified --model DIR [options]

  --role unified|prefill|decode   worker role (default unified; prefill: serves Prefill calls and
                                  pushes KV to decode workers; decode: takes Generate with a
                                  prefill worker named, receives its KV)
  --model DIR                     Hugging Face checkpoint folder
  --port N                        gRPC port (default 50051; 0 picks a free one)
  --host ADDR                     listen address (default 127.0.0.1)
  --advertise-address HOST:PORT   address routers dial (default host:port)
  --nats URL                      NATS for announcements and KV events (default $NATS_URL; none: off)
  --redis URL                     Redis for the worker lease (default $REDIS_URL; none: off)
  --worker-id ID                  default <hostname>-<port>-<random>
  --served-model-name NAME        default the checkpoint folder's name
  --device cpu|cuda:N|auto        default cpu
  --dtype float32|bfloat16|float16
  --page-size N                   tokens per KV page (default 16)
  --num-pages N                   KV pool size in pages (default from memory)
  --rope-frequency-rounding none|stored-dtype
                                  RoPE inv_freq of a bf16/f16 checkpoint: float32 as from_pretrained
                                  keeps it (none, default), or rounded as after .to(bfloat16)
  --threads N                     CPU threads (default all cores)
  --max-batch-tokens N            tokens per step (default 2048)
  --max-running N                 sequences holding pages at once (default 256)
  --prefill-chunk N               largest prefill chunk per sequence and step (default 512)
  --no-prefix-cache               disable the radix prefix cache
  --kv-host ADDR                   decode role: kvtransfer receiver address (default --host)
  --prefill-lease-ms N            decode role: give a remote prefill up after N ms (default 30000)
  --disagg-threshold N            decode role, requests with no router decision: send the prompt
                                  to a discovered prefill worker when >= N tokens are not cached here
                                  (default 0: always, when one is known)
  --log-level debug|info|warn|error
`;

type Device = 'cpu' | 'auto' | `cuda:${number}`;
type DType = 'float32' | 'bfloat16' | 'float16';

function parseDevice(text: string): Device {
  if (text === 'cpu' || text === 'auto') return text;
  if (/^cuda:\d+$/.test(text)) return text as `cuda:${number}`;
  if (text === 'cuda') return 'cuda:0';
  throw new ConfigError(`--device must be cpu, cuda:N or auto, got '${text}'`, { param: '--device' });
}

function parseDtype(text: string): DType {
  if (text === 'float32' || text === 'bfloat16' || text === 'float16') return text;
  throw new ConfigError(`--dtype must be float32, bfloat16 or float16, got '${text}'`, { param: '--dtype' });
}

/** Runs a worker until a signal; returns the exit code. `onReady` sees the bound address (tests). */
export async function runWorkerCommand(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (error) {
    process.stderr.write(
      `tandem worker: ${error instanceof Error ? error.message : String(error)}\n\n${workerUsage}`,
    );
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(workerUsage);
    return 0;
  }
  const logLevel = values['log-level'] ?? envString('LOG_LEVEL', 'info');
  const logger = new Logger({
    level: isLogLevel(logLevel) ? logLevel : 'info',
    fields: { service: 'worker' },
  });
  try {
    return await serve(values, logger);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof ConfigError) {
      process.stderr.write(`tandem worker: ${message}\n`);
      return 2;
    }
    logger.error('worker failed', { error });
    process.stderr.write(
      `tandem worker: ${error instanceof TandemError ? error.name + ': ' : ''}${message}\n`,
    );
    return 1;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      role: { type: 'string', default: 'unified' },
      model: { type: 'string' },
      port: { type: 'string', default: '50051' },
      host: { type: 'string', default: '127.0.0.1' },
      'advertise-address': { type: 'string' },
      nats: { type: 'string' },
      redis: { type: 'string' },
      'worker-id': { type: 'string' },
      'served-model-name': { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      dtype: { type: 'string' },
      'page-size': { type: 'string' },
      'num-pages': { type: 'string' },
      'rope-frequency-rounding': { type: 'string' },
      threads: { type: 'string' },
      'max-batch-tokens': { type: 'string' },
      'max-running': { type: 'string' },
      'prefill-chunk': { type: 'string' },
      'no-prefix-cache': { type: 'boolean', default: false },
      'kv-host': { type: 'string' },
      'prefill-lease-ms': { type: 'string' },
      'disagg-threshold': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

async function serve(values: ReturnType<typeof parse>['values'], logger: Logger): Promise<number> {
  const role = values.role ?? 'unified';
  if (role !== 'unified' && role !== 'prefill' && role !== 'decode') {
    throw new ConfigError(`--role must be unified, prefill or decode, got '${role}'`, { param: '--role' });
  }
  if (values.model === undefined) throw new ConfigError('--model DIR is required', { param: '--model' });
  const modelDir = resolve(values.model);
  const device = parseDevice(values.device ?? 'cpu');
  const port = parseIntStrict(values.port ?? '50051', '--port', { min: 0, max: 65535 });
  const intFlag = (name: keyof typeof values, min: number): number | undefined => {
    const text = values[name];
    return typeof text === 'string' ? parseIntStrict(text, `--${name}`, { min }) : undefined;
  };
  const scheduler: Partial<SchedulerOptions> = {
    enablePrefixCache: values['no-prefix-cache'] !== true,
  };
  const maxBatchTokens = intFlag('max-batch-tokens', 1);
  const maxRunning = intFlag('max-running', 1);
  const prefillChunk = intFlag('prefill-chunk', 1);
  if (maxBatchTokens !== undefined) scheduler.maxBatchTokens = maxBatchTokens;
  if (maxRunning !== undefined) scheduler.maxRunningSequences = maxRunning;
  if (prefillChunk !== undefined) scheduler.maxPrefillChunkTokens = prefillChunk;
  const pageSize = intFlag('page-size', 1);
  const numPages = intFlag('num-pages', 1);
  const numThreads = intFlag('threads', 1);
  const ropeRounding = values['rope-frequency-rounding'] ?? 'none';
  if (ropeRounding !== 'none' && ropeRounding !== 'stored-dtype') {
    throw new ConfigError(`--rope-frequency-rounding must be none or stored-dtype, got '${ropeRounding}'`, {
      param: '--rope-frequency-rounding',
    });
  }

  const engine = await Engine.create({
    executor: {
      modelDir,
      device,
      ...(values.dtype === undefined ? {} : { dtype: parseDtype(values.dtype) }),
      ...(pageSize === undefined ? {} : { pageSize }),
      ...(numPages === undefined ? {} : { numPages }),
      ...(numThreads === undefined ? {} : { numThreads }),
      ropeFrequencyRounding: ropeRounding,
    },
    scheduler,
  });
  const natsUrl = values.nats ?? envString('NATS_URL', null);
  const modelName = values['served-model-name'] ?? basename(modelDir);
  const threshold = intFlag('disagg-threshold', 0);
  const host = values.host ?? '127.0.0.1';
  const kvHost = values['kv-host'] ?? host;
  const leaseText = values['prefill-lease-ms'];
  const roleExtras =
    role === 'prefill'
      ? prefillRoleExtras(engine, modelName)
      : role === 'decode'
        ? await decodeRoleExtras(engine, modelName, {
            natsUrl: natsUrl === 'none' ? null : natsUrl,
            ...(threshold === undefined ? {} : { disaggThreshold: threshold }),
            kvHost,
            kvAdvertiseHost: kvHost === '0.0.0.0' || kvHost === '::' ? hostname() : kvHost,
            ...(leaseText === undefined
              ? {}
              : { leaseMs: parseIntStrict(leaseText, '--prefill-lease-ms', { min: 1 }) }),
            logger,
          })
        : null;
  const redisUrl = values.redis ?? envString('REDIS_URL', null);
  let worker: Awaited<ReturnType<typeof startUnifiedWorker>>;
  try {
    worker = await startUnifiedWorker({
      engine,
      model: {
        modelName,
        modelInfo: engine.modelInfo,
        kvLayout: engine.kvLayout,
      },
      device: engine.kvLayout.device,
      host: values.host ?? '127.0.0.1',
      port,
      advertiseAddress: values['advertise-address'] ?? null,
      workerId: values['worker-id'] ?? null,
      natsUrl: natsUrl === 'none' ? null : natsUrl,
      redisUrl: redisUrl === 'none' ? null : redisUrl,
      logger,
      roleExtras,
    });
  } catch (error) {
    await roleExtras?.close();
    await engine.close();
    throw error;
  }
  // One JSON line on stdout: how launchers and tests learn the bound port.
  process.stdout.write(
    `${JSON.stringify({ event: 'ready', workerId: worker.workerId, grpcAddress: worker.grpcAddress, port: worker.port, pid: process.pid })}\n`,
  );
  const signal = await new Promise<NodeJS.Signals>((resolveSignal) => {
    let stopping = false;
    const onSignal = (received: NodeJS.Signals): void => {
      if (!stopping) {
        stopping = true;
        resolveSignal(received);
      } else if (received === 'SIGINT') {
        // A second Ctrl-C: stop waiting for running requests.
        process.exit(130);
      } else {
        logger.info('already stopping', { signal: received });
      }
    };
    // Handlers stay installed while draining, so a repeated SIGTERM does not kill the process.
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  logger.info('stopping', { signal });
  await worker.close();
  return 0;
}
