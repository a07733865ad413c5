// Spawns a real worker through the CLI (`services/cli/bin/tandem worker ...`) and waits for its
// ready line; stop() sends SIGTERM and waits for a clean exit.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { testDeviceArgs } from './test-device.ts';

const tandemBin = new URL('../../../cli/bin/tandem', import.meta.url).pathname;

export interface WorkerProcess {
  readonly workerId: string;
  readonly grpcAddress: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** stderr so far (JSON log lines). */
  logs(): string;
  /** SIGTERM, then the exit code (SIGKILL after timeoutMs). */
  stop(timeoutMs?: number): Promise<number | null>;
}

export async function startWorkerProcess(args: string[], timeoutMs = 60_000): Promise<WorkerProcess> {
  // The test device's flags come first: a test that names its own --device overrides them.
  const deviceArgs = args.includes('--device') ? [] : testDeviceArgs();
  const child = spawn(tandemBin, ['worker', '--port', '0', ...deviceArgs, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' },
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-200_000);
  });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout! });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    const ready = await new Promise<{ workerId: string; grpcAddress: string; port: number }>(
      (resolve, reject) => {
        lines.on('line', (line) => {
          try {
            const parsed = JSON.parse(line) as {
              event?: string;
              workerId: string;
              grpcAddress: string;
              port: number;
            };
            if (parsed.event === 'ready') resolve(parsed);
          } catch {
            // not the ready line
          }
        });
        exited.then(([code]) =>
          reject(new Error(`worker exited (${String(code)}) before ready:\n${stderr}`)),
        );
      },
    );
    const stop = async (stopTimeoutMs = 30_000): Promise<number | null> => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const killTimer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
      const [code] = (await exited) as [number | null];
      clearTimeout(killTimer);
      return code;
    };
    process.once('exit', () => child.kill('SIGKILL'));
    return { ...ready, child, logs: () => stderr, stop };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
