// `tandem up`: the whole stack on this machine. Makes NATS and Redis reachable (starting local
// ones, installing Debian's packages when root, or saying exactly what to install or set), starts
// the worker processes (services/cli/bin/tandem worker ...), then the router in this process,
// prints the URL and stops everything on Ctrl-C / SIGTERM. Workers are listed as specs (model,
// role, device), so the disaggregated layout (--prefill / --decode) and several models (--model
// repeated: the layout once per model, one router for all) add specs, not code paths.
// With --observe it also starts Prometheus (Debian's package) scraping every process, found
// through the router's GET /debug/targets, with the rules of deploy/prometheus/.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  clusterSecurityFrom,
  clusterSecurityOptions,
  defaultNatsUrl,
  defaultRedisUrl,
  defineOptions,
  type EnsuredService,
  ensureNats,
  ensureRedis,
  type Logger,
  logLevelOption,
  type OptionValues,
  type RunningPrometheus,
  runCommand,
  startPrometheus,
  untilSignal,
} from '@tandem/common';
import {
  loadApiKeys,
  policyNames,
  RouterApp,
  type RouterOptions,
  routerOptions,
  routerOptionsFrom,
  unlimitedKey,
} from '@tandem/router';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const tandemBin = join(repoRoot, 'services', 'cli', 'bin', 'tandem');
const demoModelDir = join(repoRoot, 'deploy', 'models', 'tandem-demo-code');
const prometheusRulesDir = join(repoRoot, 'deploy', 'prometheus');

const upOptions = defineOptions('up', '[options]', {
  model: {
    type: 'list',
    valueName: 'DIR',
    doc: 'checkpoint to serve (default deploy/models/tandem-demo-code); repeat to serve several models, each with the worker layout below, behind one router',
  },
  port: { type: 'int', default: 8000, min: 0, max: 65535, doc: 'router HTTP port' },
  prefill: { type: 'int', default: null, min: 1, max: 64, doc: 'prefill workers (default 1) ...' },
  decode: {
    type: 'int',
    default: null,
    min: 1,
    max: 64,
    doc: '... and decode workers (default 1): the disaggregated layout (the default layout)',
  },
  'disagg-threshold': {
    type: 'int',
    default: 0,
    min: 0,
    doc: 'the router has decode workers prefill locally when fewer than N prompt tokens are uncached on them (0: every prompt goes through a prefill worker, the one the router picks by cache, queue and transfer)',
  },
  unified: {
    type: 'int',
    default: null,
    min: 1,
    max: 64,
    doc: 'N unified workers instead (not with --prefill / --decode; with --device cuda, one per visible GPU)',
  },
  device: {
    type: 'string',
    default: 'cpu',
    choices: ['cpu', 'cuda'],
    doc: 'where workers compute (cuda: worker i on GPU i mod count)',
  },
  policy: { type: 'string', default: 'cache_aware', choices: policyNames, doc: 'routing policy' },
  'served-model-name': {
    type: 'list',
    valueName: 'NAME',
    doc: "the name clients use for the --model of the same position (default the folder's name)",
  },
  nats: {
    type: 'string',
    default: defaultNatsUrl,
    env: 'NATS_URL',
    valueName: 'URL',
    doc: 'NATS (started here if unreachable)',
  },
  redis: {
    type: 'string',
    default: defaultRedisUrl,
    env: 'REDIS_URL',
    valueName: 'URL',
    doc: 'Redis (started here if unreachable)',
  },
  observe: {
    type: 'boolean',
    default: false,
    doc: 'also start Prometheus (Debian package prometheus) scraping every process, with the rules of deploy/prometheus/; prints its URL',
  },
  'prometheus-port': {
    type: 'int',
    default: 9090,
    min: 0,
    max: 65535,
    doc: 'with --observe: Prometheus port (0 picks a free one)',
  },
  'scrape-interval-s': {
    type: 'int',
    default: 5,
    min: 1,
    doc: 'with --observe: scrape and rule evaluation interval',
  },
  'worker-arg': {
    type: 'list',
    valueName: 'ARG',
    doc: 'one more argument for every worker, as `tandem worker` takes it (e.g. --worker-arg=--max-running=512)',
  },
  'router-arg': {
    type: 'list',
    valueName: 'ARG',
    doc: 'one more router option, as `tandem router` takes it (e.g. --router-arg=--max-concurrent=1024)',
  },
  'no-metrics': {
    type: 'boolean',
    default: false,
    doc: 'router and workers record no metrics (the baseline of the metrics-cost benchmark)',
  },
  'api-key': {
    type: 'list',
    env: 'TANDEM_API_KEYS',
    valueName: 'KEY',
    doc: 'a client key for the router (repeatable; see tandem router --help: --api-key-file, limits)',
  },
  'api-key-file': {
    type: 'string',
    default: null,
    env: 'TANDEM_API_KEY_FILE',
    valueName: 'FILE',
    doc: 'client keys, one a line: KEY [rpm=N] [tpm=N] [concurrency=N]',
  },
  'admin-key': {
    type: 'list',
    env: 'TANDEM_ADMIN_KEYS',
    valueName: 'KEY',
    doc: "a key for the router's /metrics and /debug/* (needed once client keys are set)",
  },
  ...clusterSecurityOptions,
  ...logLevelOption,
});

type UpValues = OptionValues<typeof upOptions.specs>;

/** A model to serve: its folder and the name it is served under (null: the folder's name). */
interface ModelToServe {
  dir: string;
  servedName: string | null;
}

function modelsToServe(values: UpValues): ModelToServe[] {
  const dirs = values.model.length === 0 ? [demoModelDir] : values.model;
  const names = values['served-model-name'];
  if (names.length > dirs.length) {
    throw new ConfigError('more --served-model-name flags than --model flags', {
      param: '--served-model-name',
    });
  }
  return dirs.map((dir, i) => ({ dir: resolve(dir), servedName: names[i] ?? null }));
}

function servedNameOf(model: ModelToServe): string {
  return model.servedName ?? model.dir.split('/').at(-1) ?? model.dir;
}

/** One worker process to start. */
interface WorkerSpec {
  model: ModelToServe;
  role: 'unified' | 'prefill' | 'decode';
  device: string;
  workerId: string;
  /** Share of its GPU's free memory for its KV pool (workers sharing a GPU split it), or null. */
  kvCacheFraction: number | null;
}

/** What a GPU's workers give their KV pools together (the executor's own default for one). */
const kvShareOfGpu = 0.85;

/** Splits each GPU's KV share between the workers on it (each measures free memory as it starts). */
function withKvShares(specs: Omit<WorkerSpec, 'kvCacheFraction'>[]): WorkerSpec[] {
  const perDevice = new Map<string, number>();
  for (const spec of specs) perDevice.set(spec.device, (perDevice.get(spec.device) ?? 0) + 1);
  return specs.map((spec) => {
    const count = perDevice.get(spec.device) ?? 1;
    return {
      ...spec,
      kvCacheFraction: spec.device.startsWith('cuda') && count > 1 ? kvShareOfGpu / count : null,
    };
  });
}

interface RunningWorker {
  spec: WorkerSpec;
  child: ChildProcess;
  grpcAddress: string;
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

/**
 * The worker layout once per model (model i's workers are named up-<pid>-m<i>-<role>-<j>), the
 * GPUs' KV shares split over every worker on them, whatever its model.
 */
function workerSpecs(values: UpValues, models: readonly ModelToServe[]): WorkerSpec[] {
  return withKvShares(
    models.flatMap((model, m) =>
      layoutSpecs(values).map((spec) => ({
        ...spec,
        model,
        workerId: models.length === 1 ? spec.workerId : spec.workerId.replace(/^up-(\d+)-/, `up-$1-m${m}-`),
      })),
    ),
  );
}

function layoutSpecs(values: UpValues): Omit<WorkerSpec, 'kvCacheFraction' | 'model'>[] {
  const device = values.device;
  const numGpus = device === 'cuda' ? countVisibleGpus() : 0;
  if (device === 'cuda' && numGpus === 0) {
    throw new ConfigError('--device cuda: no GPU is visible (nvidia-smi -L lists none)', {
      param: '--device',
    });
  }
  const disaggregated = values.prefill !== null || values.decode !== null || values.unified === null;
  if (values.unified !== null && (values.prefill !== null || values.decode !== null)) {
    throw new ConfigError('--unified is an alternative to --prefill / --decode, not combined with them', {
      param: '--unified',
    });
  }
  const deviceOf = (i: number): string => (device === 'cuda' ? `cuda:${i % numGpus}` : 'cpu');
  if (disaggregated) {
    // Decode workers first: they subscribe to announcements, so they see each prefill worker join.
    const roles = [
      ...Array.from({ length: values.decode ?? 1 }, () => 'decode' as const),
      ...Array.from({ length: values.prefill ?? 1 }, () => 'prefill' as const),
    ];
    return roles.map((role, i) => ({
      role,
      device: deviceOf(i),
      workerId: `up-${process.pid}-${role}-${i}`,
    }));
  }
  return Array.from({ length: values.unified ?? 1 }, (_, i) => ({
    role: 'unified' as const,
    device: deviceOf(i),
    workerId: `up-${process.pid}-unified-${i}`,
  }));
}

async function startWorkerProcess(
  spec: WorkerSpec,
  natsUrl: string,
  redisUrl: string,
  values: UpValues,
  logger: Logger,
): Promise<RunningWorker> {
  const args = [
    'worker',
    '--role',
    spec.role,
    '--model',
    spec.model.dir,
    '--port',
    '0',
    '--device',
    spec.device,
  ];
  args.push('--nats', natsUrl, '--redis', redisUrl, '--worker-id', spec.workerId);
  args.push('--log-level', values['log-level']);
  if (values['no-metrics']) args.push('--no-metrics');
  if (spec.model.servedName !== null) args.push('--served-model-name', spec.model.servedName);
  if (spec.role === 'decode') args.push('--disagg-threshold', String(values['disagg-threshold']));
  if (spec.kvCacheFraction !== null) args.push('--kv-cache-fraction', spec.kvCacheFraction.toFixed(4));
  // The cluster's security goes to the workers as this process got it: files by path, the
  // secret through the environment (never on a command line, which ps shows).
  for (const flag of ['cluster-secret-file', 'tls-cert', 'tls-key', 'tls-ca'] as const) {
    if (values[flag] !== null) args.push(`--${flag}`, values[flag]);
  }
  args.push(...values['worker-arg']);
  const env = { ...process.env };
  if (values['cluster-secret'] !== null) env.TANDEM_CLUSTER_SECRET = values['cluster-secret'];
  const child = spawn(tandemBin, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
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

/** The router's client and admin keys (limits from the key file; flag keys are unlimited). */
function upKeys(values: UpValues): Pick<RouterOptions, 'apiKeys' | 'adminKeys' | 'adminAccess'> {
  const apiKeys = loadApiKeys(values['api-key'], values['api-key-file'], unlimitedKey);
  return { apiKeys, adminKeys: values['admin-key'], adminAccess: apiKeys.length > 0 ? 'key' : 'open' };
}

export function run(argv: string[]): Promise<number> {
  // The router runs in this process: its traces are the router's.
  return runCommand('up', upOptions, argv, up, () => 'tandem-router');
}

/** The recording and alerting rule files `--observe` loads. */
function ruleFiles(): string[] {
  return readdirSync(prometheusRulesDir)
    .filter((name) => name.endsWith('.rules.yml'))
    .map((name) => join(prometheusRulesDir, name));
}

async function up(values: UpValues, logger: Logger): Promise<number> {
  const services: EnsuredService[] = [];
  const workers: RunningWorker[] = [];
  let router: RouterApp | null = null;
  let prometheus: RunningPrometheus | null = null;
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await prometheus?.stop();
    await router?.close();
    await Promise.all(workers.map(stopWorker));
    for (const service of services.reverse()) await service.stop();
  };
  const stopped = untilSignal(logger);
  try {
    const models = modelsToServe(values);
    const specs = workerSpecs(values, models);
    const nats = await ensureNats(logger, values.nats);
    services.push(nats);
    const redis = await ensureRedis(logger, values.redis);
    services.push(redis);
    for (const spec of specs) {
      const worker = await startWorkerProcess(spec, nats.url, redis.url, values, logger);
      workers.push(worker);
      worker.child.once('exit', (code, signal) => {
        if (!stopping) logger.error('a worker exited', { workerId: spec.workerId, code, signal });
      });
    }
    router = await RouterApp.start({
      ...routerOptionsFrom(
        routerOptions.parse([...models.flatMap((m) => ['--model', m.dir]), ...values['router-arg']]),
        logger,
      ),
      models,
      host: '127.0.0.1',
      port: values.port,
      policy: values.policy,
      natsUrl: nats.url,
      redisUrl: redis.url,
      disaggThreshold: values['disagg-threshold'],
      metricsEnabled: !values['no-metrics'],
      ...upKeys(values),
      security: clusterSecurityFrom(values),
      logger: logger.child({ service: 'router' }),
    });
    const deadline = Date.now() + 15_000;
    // The router routes to unified and decode workers and names the prefill worker for each prompt.
    const seesAll = (r: RouterApp): boolean =>
      models.every((model) => {
        const route = r.route(servedNameOf(model));
        const mine = workers.filter((w) => w.spec.model === model);
        const numRoutable = mine.filter((w) => w.spec.role !== 'prefill').length;
        return (
          route !== null &&
          route.registry.size >= numRoutable &&
          route.registry.prefillWorkers().length >= mine.length - numRoutable
        );
      });
    while (!seesAll(router) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (values.observe) {
      prometheus = await startPrometheus(
        { routerUrl: router.url, scrapeIntervalS: values['scrape-interval-s'], ruleFiles: ruleFiles() },
        logger,
        values['prometheus-port'],
      );
      process.stdout.write(
        `prometheus: ${prometheus.url} (scraping ${router.url}/debug/targets every ${values['scrape-interval-s']} s; ` +
          `dashboards to import: deploy/grafana/*.json)\n`,
      );
    }
    process.stdout.write(
      `tandem is up: ${router.url}/v1 (model${models.length === 1 ? '' : 's'} ${models.map(servedNameOf).join(', ')}, ` +
        `${describeWorkers(workers)}, policy ${values.policy}). Ctrl-C stops it.\n`,
    );
  } catch (error) {
    await stopAll();
    throw error;
  }
  await stopped;
  process.stdout.write('tandem up: stopping\n');
  await stopAll();
  return 0;
}
