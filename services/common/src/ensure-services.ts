// "Make NATS and Redis reachable" for `tandem up`: use the server at NATS_URL / REDIS_URL when one
// answers; otherwise start a local one on that port (installing Debian's package when we are root
// and apt-get exists); otherwise fail saying exactly what to install or set.
import { execFileSync } from 'node:child_process';
import { ChildServer } from './child-server.ts';
import { hostPortOf, natsUrlFromEnv, redactUrl, redisUrlFromEnv } from './config.ts';
import { DependencyMissingError, UnavailableError } from './errors.ts';
import type { Logger } from './logger.ts';
import { canConnect } from './ports.ts';
import { natsServerCommand, redisServerCommand, type ServerCommand } from './server-commands.ts';

export interface EnsuredService {
  url: string;
  /** True when this process started the server (and stop() ends it). */
  startedHere: boolean;
  stop(): Promise<void>;
}

interface ServiceKind extends ServerCommand {
  debianPackage: string;
  envName: string;
  defaultPort: number;
}

const natsKind: ServiceKind = {
  ...natsServerCommand,
  debianPackage: 'nats-server',
  envName: 'NATS_URL',
  defaultPort: 4222,
};

const redisKind: ServiceKind = {
  ...redisServerCommand,
  debianPackage: 'redis-server',
  envName: 'REDIS_URL',
  defaultPort: 6379,
};

export function ensureNats(logger: Logger, url = natsUrlFromEnv()): Promise<EnsuredService> {
  return ensureService(natsKind, url, logger);
}

export function ensureRedis(logger: Logger, url = redisUrlFromEnv()): Promise<EnsuredService> {
  return ensureService(redisKind, url, logger);
}

function isLocalHost(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host === '0.0.0.0';
}

/** Whether `binary` is on the PATH. */
export function onPath(binary: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Installs `binary` from Debian's `debianPackage` when it is missing and we are root; whether it is there now. */
export function ensureBinary(binary: string, debianPackage: string, logger: Logger): boolean {
  return onPath(binary) || tryAptInstall({ binary, debianPackage }, logger);
}

function tryAptInstall(kind: { binary: string; debianPackage: string }, logger: Logger): boolean {
  if (process.getuid?.() !== 0 || !onPath('apt-get')) return false;
  logger.info(`installing ${kind.debianPackage} with apt-get`);
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', kind.debianPackage], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch {
    try {
      execFileSync('apt-get', ['update'], { stdio: 'ignore' });
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', kind.debianPackage], {
        stdio: 'ignore',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch {
      return false;
    }
  }
  return onPath(kind.binary);
}

async function ensureService(kind: ServiceKind, url: string, logger: Logger): Promise<EnsuredService> {
  const { host, port } = hostPortOf(url, kind.defaultPort);
  if (await canConnect(host, port, 1000)) {
    logger.info(`using ${kind.name} at ${redactUrl(url)}`);
    return { url, startedHere: false, stop: async () => {} };
  }
  if (!isLocalHost(host)) {
    throw new UnavailableError(`${kind.name} at ${redactUrl(url)} (${kind.envName}) does not answer`);
  }
  if (!onPath(kind.binary) && !tryAptInstall(kind, logger)) {
    throw new DependencyMissingError(
      `${kind.name} is not reachable at ${redactUrl(url)} and ${kind.binary} is not installed: install it ` +
        `(Debian/Ubuntu: sudo apt-get install ${kind.debianPackage}) or set ${kind.envName} to a running server`,
    );
  }
  const server = await ChildServer.start({ name: kind.name, command: kind.binary, args: kind.args, port });
  logger.info(`started ${kind.binary} on port ${port}`, { pid: server.pid });
  return { url, startedHere: true, stop: () => server.stop() };
}
