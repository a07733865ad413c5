// A server binary run as a child process on a free port in its own temp dir, with stop / restart
// (same port) and cleanup. The base of the NATS and Redis test servers.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessExitedError } from './errors.ts';
import { freePort, waitForPort } from './ports.ts';

export interface ChildServerSpec {
  /** Short name for temp dirs and errors, e.g. 'nats'. */
  name: string;
  /** Binary on PATH, e.g. 'nats-server'. */
  command: string;
  /** Arguments for a given port and data dir. */
  args: (port: number, dataDir: string) => string[];
  /** A fixed port (default: a free one). */
  port?: number;
}

const live = new Set<ChildServer>();
let exitHookInstalled = false;

/** Kills every server still running when the test process exits (a failed test must not leak them). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const server of live) server.killNow();
  });
}

export class ChildServer implements AsyncDisposable {
  readonly host = '127.0.0.1';
  readonly port: number;
  readonly dataDir: string;
  readonly #spec: ChildServerSpec;
  #child: ChildProcess | null = null;
  #stderr = '';

  private constructor(spec: ChildServerSpec, port: number, dataDir: string) {
    this.#spec = spec;
    this.port = port;
    this.dataDir = dataDir;
  }

  /** Starts the server on a free port and waits until it accepts connections. */
  static async start(spec: ChildServerSpec): Promise<ChildServer> {
    const dataDir = mkdtempSync(join(tmpdir(), `tandem-${spec.name}-`));
    const server = new ChildServer(spec, spec.port ?? (await freePort()), dataDir);
    live.add(server);
    installExitHook();
    try {
      await server.restart();
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** (Re)starts the process on the same port; a no-op while it runs. */
  async restart(): Promise<void> {
    if (this.#child !== null) return;
    this.#stderr = '';
    const child = spawn(this.#spec.command, this.#spec.args(this.port, this.dataDir), {
      cwd: this.dataDir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.#child = child;
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      this.#stderr = (this.#stderr + text).slice(-4000);
    });
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code, signal) => {
        if (this.#child === child) this.#child = null;
        reject(new ProcessExitedError(this.#spec.command, code, signal, this.#stderr));
      });
      child.once('error', (cause) => {
        if (this.#child === child) this.#child = null;
        reject(new ProcessExitedError(this.#spec.command, null, null, String(cause)));
      });
    });
    exited.catch(() => {});
    await Promise.race([waitForPort(this.host, this.port, 15_000), exited]);
  }

  /** Stops the process (SIGTERM, then SIGKILL after 3 s) and keeps the port and data dir. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
    this.#child = null;
  }

  /** Stops the process and removes its data dir. Idempotent. */
  async stop(): Promise<void> {
    await this.kill();
    live.delete(this);
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  killNow(): void {
    this.#child?.kill('SIGKILL');
    this.#child = null;
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
