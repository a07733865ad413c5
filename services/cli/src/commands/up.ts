// `tandem up`: the whole stack on this machine. Makes NATS and Redis reachable (starting local
// ones, installing Debian's packages when root, or saying exactly what to install or set), starts
// the worker processes (services/cli/bin/tandem worker ...), then the router in this process,
// prints the URL and stops everything on Ctrl-C / SIGTERM. Workers are listed as specs (role,
// device), so the disaggregated layout (--prefill / --decode) adds specs, not a new code path.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  ConfigError,
  type EnsuredService,
  ensureNats,
  ensureRedis,
  envString,
  isLogLevel,
  Logger,
  parseIntStrict,
  TandemError,
} from '@tandem/common';
import { defaultRouterOptions, isPolicyName, policyNames, RouterApp } from '@tandem/router';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const tandemBin = join(repoRoot, 'services', 'cli', 'bin', 'tandem');
const demoModelDir = join(repoRoot, 'deploy', 'models', 'tandem-demo-code');

const usage = `usage: tandem up [options]

  --model DIR            checkpoint to serve (default deploy/models/tandem-demo-code)
  --port N               router HTTP port (default 8000)
  --prefill N            prefill workers (default 1) ...
  --decode M             ... and decode workers (default 1): the disaggregated layout (default)
  --disagg-threshold N   the router has decode workers prefill locally when fewer than N prompt
                         tokens are uncached on them (default 0: every prompt goes through a
                         prefill worker, the one the router picks by cache, queue and transfer)
  --unified N            N unified workers instead (not with --prefill / --decode; with
                         --device cuda, one per visible GPU)
  --device cpu|cuda      where workers compute (default cpu; cuda: worker i on GPU i mod count)
  --policy NAME          ${policyNames.join(' | ')} (default cache_aware)
  --served-model-name X  the name clients use (default the folder's name)
  --nats URL             default $NATS_URL or nats://127.0.0.1:4222 (started here if unreachable)
  --redis URL            default $REDIS_URL or redis://127.0.0.1:6379 (started here if unreachable)
  --log-level LEVEL      debug | info | warn | error (default info)
`;

/** One worker process to start. */
interface WorkerSpec {
  role: 'unified' | 'prefill' | 'decode';
  device: string;
  workerId: string;
}

interface RunningWorker {
  spec: WorkerSpec;
  child: ChildProcess;
  grpcAddress: string;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      model: { type: 'string' },
      port: { type: 'string', default: '8000' },
      unified: { type: 'string' },
      prefill: { type: 'string' },
      decode: { type: 'string' },
      'disagg-threshold': { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      policy: { type: 'string', default: 'cache_aware' },
      'served-model-name': { type: 'string' },
      nats: { type: 'string' },
      redis: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function countVisibleGpus(): number {
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined && visible.trim() !== '')
    return visible.split(',').filter((d) => d.trim() !== '').length;
  try {
    return execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.startsWith('GPU ')).length;
  } catch {
    return 0;
  }
}

function workerSpecs(values: ReturnType<typeof parse>['values']): WorkerSpec[] {
  const device = values.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda') {
    throw new ConfigError(`--device must be cpu or cuda, got '${device}'`, { param: '--device' });
  }
  const numGpus = device === 'cuda' ? countVisibleGpus() : 0;
  if (device === 'cuda' && numGpus === 0) {
    throw new ConfigError('--device cuda: no GPU is visible (nvidia-smi -L lists none)', {
      param: '--device',
    });
  }
  const disaggregated =
    values.prefill !== undefined || values.decode !== undefined || values.unified === undefined;
  if (values.unified !== undefined && (values.prefill !== undefined || values.decode !== undefined)) {
    throw new ConfigError('--unified is an alternative to --prefill / --decode, not combined with them', {
      param: '--unified',
    });
  }
  if (disaggregated) {
    // Decode workers first: they subscribe to announcements, so they see each prefill worker join.
    const numDecode = parseIntStrict(values.decode ?? '1', '--decode', { min: 1, max: 64 });
    const numPrefill = parseIntStrict(values.prefill ?? '1', '--prefill', { min: 1, max: 64 });
    const roles = [
      ...Array.from({ length: numDecode }, () => 'decode' as const),
      ...Array.from({ length: numPrefill }, () => 'prefill' as const),
    ];
    return roles.map((role, i) => ({
      role,
      device: device === 'cuda' ? `cuda:${i % numGpus}` : 'cpu',
      workerId: `up-${process.pid}-${role}-${i}`,
    }));
  }
  const numUnified = parseIntStrict(values.unified ?? '1', '--unified', { min: 1, max: 64 });
  return Array.from({ length: numUnified }, (_, i) => ({
    role: 'unified' as const,
    device: device === 'cuda' ? `cuda:${i % numGpus}` : 'cpu',
    workerId: `up-${process.pid}-unified-${i}`,
  }));
}

async function startWorkerProcess(
  spec: WorkerSpec,
  modelDir: string,
  natsUrl: string,
  redisUrl: string,
  servedName: string | undefined,
  disaggThreshold: string | undefined,
  logger: Logger,
): Promise<RunningWorker> {
  const args = ['worker', '--role', spec.role, '--model', modelDir, '--port', '0', '--device', spec.device];
  args.push('--nats', natsUrl, '--redis', redisUrl, '--worker-id', spec.workerId);
  if (servedName !== undefined) args.push('--served-model-name', servedName);
  if (spec.role === 'decode' && disaggThreshold !== undefined)
    args.push('--disagg-threshold', disaggThreshold);
  const child = spawn(tandemBin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const grpcAddress = await new Promise<string>((resolveReady, reject) => {
    lines.on('line', (line) => {
      try {
        const event = JSON.parse(line) as { event?: string; grpcAddress?: string };
        if (event.event === 'ready' && typeof event.grpcAddress === 'string') resolveReady(event.grpcAddress);
      } catch {
        process.stdout.write(`${line}\n`);
      }
    });
    child.once('exit', (code, signal) =>
      reject(new ConfigError(`worker ${spec.workerId} exited (${code ?? signal}) before it was ready`)),
    );
  });
  logger.info('worker ready', { workerId: spec.workerId, device: spec.device, grpcAddress });
  return { spec, child, grpcAddress };
}

function describeWorkers(workers: RunningWorker[]): string {
  const counts = new Map<string, number>();
  for (const worker of workers) counts.set(worker.spec.role, (counts.get(worker.spec.role) ?? 0) + 1);
  return [...counts].map(([role, n]) => `${n} ${role} worker${n === 1 ? '' : 's'}`).join(', ');
}

async function stopWorker(worker: RunningWorker): Promise<void> {
  const { child } = worker;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(killer);
}

export async function run(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (error) {
    process.stderr.write(`tandem up: ${(error as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(usage);
    return 0;
  }
  const level = values['log-level'] ?? envString('LOG_LEVEL', 'info');
  const logger = new Logger({ level: isLogLevel(level) ? level : 'info', fields: { service: 'up' } });
  const services: EnsuredService[] = [];
  const workers: RunningWorker[] = [];
  let router: RouterApp | null = null;
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await router?.close();
    await Promise.all(workers.map(stopWorker));
    for (const service of services.reverse()) await service.stop();
  };
  const stopped = new Promise<void>((resolveStop) => {
    const onSignal = (): void => resolveStop();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  try {
    const modelDir = resolve(values.model ?? demoModelDir);
    const policy = values.policy ?? 'cache_aware';
    if (!isPolicyName(policy)) {
      throw new ConfigError(`--policy must be one of ${policyNames.join(', ')}`, { param: '--policy' });
    }
    const port = parseIntStrict(values.port ?? '8000', '--port', { min: 0, max: 65535 });
    const disaggThreshold = parseIntStrict(values['disagg-threshold'] ?? '0', '--disagg-threshold', {
      min: 0,
    });
    const specs = workerSpecs(values);
    const nats = await ensureNats(logger, values.nats ?? undefined);
    services.push(nats);
    const redis = await ensureRedis(logger, values.redis ?? undefined);
    services.push(redis);
    for (const spec of specs) {
      const worker = await startWorkerProcess(
        spec,
        modelDir,
        nats.url,
        redis.url,
        values['served-model-name'],
        values['disagg-threshold'],
        logger,
      );
      workers.push(worker);
      worker.child.once('exit', (code, signal) => {
        if (!stopping) logger.error('a worker exited', { workerId: spec.workerId, code, signal });
      });
    }
    router = await RouterApp.start({
      ...defaultRouterOptions,
      modelDir,
      servedModelName: values['served-model-name'] ?? null,
      host: '127.0.0.1',
      port,
      policy,
      natsUrl: nats.url,
      redisUrl: redis.url,
      disaggThreshold,
      logger: logger.child({ service: 'router' }),
    });
    const deadline = Date.now() + 15_000;
    // The router routes to unified and decode workers and names the prefill worker for each prompt.
    const numRoutable = workers.filter((w) => w.spec.role !== 'prefill').length;
    const numPrefill = workers.length - numRoutable;
    while (
      (router.registry.size < numRoutable || router.registry.prefillWorkers().length < numPrefill) &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    process.stdout.write(
      `tandem is up: ${router.url}/v1 (model ${values['served-model-name'] ?? modelDir.split('/').at(-1)}, ` +
        `${describeWorkers(workers)}, policy ${policy}). Ctrl-C stops it.\n`,
    );
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`tandem up: ${error instanceof TandemError ? `${error.name}: ` : ''}${message}\n`);
    await stopAll();
    return error instanceof ConfigError ? 2 : 1;
  }
  await stopped;
  process.stdout.write('tandem up: stopping\n');
  await stopAll();
  return 0;
}
