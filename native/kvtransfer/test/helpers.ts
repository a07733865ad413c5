// Test plumbing: a peer process (test/peer.ts) and a request/reply over its IPC channel.
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { KvSpec } from '../src/index.ts';

export const baseSpec: KvSpec = {
  model: 'tiny-llama',
  dtype: 'float32',
  numLayers: 4,
  numKvHeads: 2,
  headDim: 16,
  pageSize: 8,
  numPages: 48,
};

export interface Peer {
  child: ChildProcess;
  /** Sends a command and resolves with the next message of `replyType`. */
  ask<T = Record<string, unknown>>(command: Record<string, unknown>, replyType: string): Promise<T>;
  next<T = Record<string, unknown>>(replyType: string): Promise<T>;
  stop(): Promise<void>;
}

export function startPeer(): Peer {
  const child = fork(fileURLToPath(new URL('./peer.ts', import.meta.url)), [], {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = <T>(replyType: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (message: { type: string }): void => {
        if (message.type === 'crashed') reject(new Error(JSON.stringify(message)));
        if (message.type !== replyType) return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(message as T);
      };
      const onExit = (): void => reject(new Error(`peer exited while waiting for ${replyType}`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  return {
    child,
    next,
    ask<T>(command: Record<string, unknown>, replyType: string): Promise<T> {
      const reply = next<T>(replyType);
      child.send(command);
      return reply;
    },
    async stop(): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface Waited {
  ok: boolean;
  bytes?: number;
  error?: string;
}

/** Announces a transfer on a receiver peer; resolves once announced, with the outcome to come. */
export async function expectOn(
  receiver: Peer,
  transferId: bigint,
  timeoutMs = 5000,
): Promise<{ outcome: Promise<Waited> }> {
  const waited = receiver.next<Waited>('waited');
  await receiver.ask({ type: 'wait', transferId, timeoutMs }, 'expecting');
  return { outcome: waited }; // wrapped: an async function would flatten (await) a returned promise
}

/** A pool filled so every (layer, kv, page, byte) has its own value pattern. */
export function patternedPool(spec: KvSpec, pageBytes: number, seed: number): Uint8Array {
  const pool = new Uint8Array(spec.numLayers * 2 * spec.numPages * pageBytes);
  for (let i = 0; i < pool.length; i++) pool[i] = (Math.imul(i, 2654435761) + seed) >>> 24;
  return pool;
}
