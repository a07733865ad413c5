// `tandem router --processes N`: N router processes (node:cluster) sharing one HTTP port, so one
// replica uses N cores. Each process is a full replica (its own NATS and Redis connections, worker
// registry, KV index and admission, replica id `<id>-p<i>`): the state replicas share already
// travels through Redis and NATS. The primary only forks, restarts a process that dies, relays
// signals and answers the processes' "ask everyone" requests (IPC), which /metrics (every process's
// series, labelled router_process) and /debug/routing/{id} (the process that routed it) use.
import cluster, { type Worker as ClusterWorker } from 'node:cluster';
import type { Logger } from '@tandem/common';

/** What one process can be asked for by its peers. */
export type PeerQuery = { kind: 'metrics' } | { kind: 'routing'; requestId: string };

/** Inside a process of a group: its index and the way to ask every process (itself included). */
export interface ProcessPeers {
  readonly index: number;
  readonly count: number;
  /** Every live process's answer (in process order; a process that does not answer in time is left out). */
  gather(query: PeerQuery): Promise<unknown[]>;
  /** This process's answers to its peers' queries. */
  answer(handler: (query: PeerQuery) => unknown): void;
}

const indexEnv = 'TANDEM_ROUTER_PROCESS';
const countEnv = 'TANDEM_ROUTER_PROCESSES';
const gatherTimeoutMs = 2000;

type ToPrimary =
  | { type: 'ready'; url: string }
  | { type: 'gather'; seq: number; query: PeerQuery }
  | { type: 'answer'; seq: number; value: unknown };
type ToProcess =
  | { type: 'query'; seq: number; query: PeerQuery }
  | { type: 'gathered'; seq: number; values: unknown[] };

/** The group this process belongs to, or null (a lone router, or the primary). */
export function processPeers(): ProcessPeers | null {
  const index = process.env[indexEnv];
  if (!cluster.isWorker || index === undefined) return null;
  let nextSeq = 0;
  const pending = new Map<number, (values: unknown[]) => void>();
  let handler: (query: PeerQuery) => unknown = () => null;
  process.on('message', (message: ToProcess) => {
    if (message.type === 'gathered') {
      pending.get(message.seq)?.(message.values);
      pending.delete(message.seq);
    } else if (message.type === 'query') {
      Promise.resolve()
        .then(() => handler(message.query))
        .catch(() => null)
        .then((value) => process.send?.({ type: 'answer', seq: message.seq, value } satisfies ToPrimary));
    }
  });
  return {
    index: Number(index),
    count: Number(process.env[countEnv] ?? '1'),
    gather: (query) =>
      new Promise((resolve) => {
        const seq = ++nextSeq;
        pending.set(seq, resolve);
        process.send?.({ type: 'gather', seq, query } satisfies ToPrimary);
      }),
    answer: (h) => {
      handler = h;
    },
  };
}

/** Tells the primary this process serves (it prints the one ready line). */
export function reportReady(url: string): void {
  process.send?.({ type: 'ready', url } satisfies ToPrimary);
}

/**
 * The primary: forks `count` processes running this same command, prints the ready line once all
 * serve, restarts one that dies, and on `stopped` (a signal) stops them all. Returns the exit code.
 */
export async function runProcessGroup(
  count: number,
  logger: Logger,
  stopped: Promise<unknown>,
): Promise<number> {
  const workers = new Map<number, ClusterWorker>();
  const ready = new Set<number>();
  let stopping = false;
  let nextSeq = 0;
  /** Gathers in flight: primary seq -> the answers so far. */
  const gathers = new Map<
    number,
    {
      from: ClusterWorker;
      seq: number;
      answers: Map<number, unknown>;
      expected: Set<number>;
      timer: NodeJS.Timeout;
    }
  >();
  const finish = (primarySeq: number): void => {
    const gather = gathers.get(primarySeq);
    if (gather === undefined) return;
    gathers.delete(primarySeq);
    clearTimeout(gather.timer);
    const values = [...gather.answers.entries()].sort(([a], [b]) => a - b).map(([, value]) => value);
    if (gather.from.isConnected())
      gather.from.send({ type: 'gathered', seq: gather.seq, values } satisfies ToProcess);
  };
  let resolveAllReady: (url: string | null) => void = () => {};
  /** The URL once every process serves; null when one could not start (the group gives up). */
  const allReady = new Promise<string | null>((resolve) => {
    resolveAllReady = resolve;
  });
  let failed = false;
  const fork = (index: number): void => {
    const worker = cluster.fork({ [indexEnv]: String(index), [countEnv]: String(count) });
    workers.set(index, worker);
    worker.on('message', (message: ToPrimary) => {
      if (message.type === 'ready') {
        ready.add(index);
        if (ready.size === count) resolveAllReady(message.url);
      } else if (message.type === 'gather') {
        const primarySeq = ++nextSeq;
        const expected = new Set([...workers.entries()].filter(([, w]) => w.isConnected()).map(([i]) => i));
        gathers.set(primarySeq, {
          from: worker,
          seq: message.seq,
          answers: new Map(),
          expected,
          timer: setTimeout(() => finish(primarySeq), gatherTimeoutMs),
        });
        for (const i of expected) {
          workers.get(i)?.send({ type: 'query', seq: primarySeq, query: message.query } satisfies ToProcess);
        }
      } else if (message.type === 'answer') {
        const gather = gathers.get(message.seq);
        if (gather === undefined) return;
        gather.answers.set(index, message.value);
        if (gather.answers.size >= gather.expected.size) finish(message.seq);
      }
    });
    worker.on('exit', (code, signal) => {
      if (workers.get(index) === worker) workers.delete(index);
      if (stopping) return;
      if (!ready.has(index)) {
        // It never served (a taken port, a bad flag): another would fail the same way.
        failed = true;
        resolveAllReady(null);
        return;
      }
      logger.error('router process exited; starting another', { process: index, code, signal });
      fork(index);
    });
  };
  for (let i = 0; i < count; i++) fork(i);
  const url = await Promise.race([allReady, stopped.then(() => null)]);
  if (url !== null) {
    process.stdout.write(`tandem router: serving ${url}/v1 (${count} processes)\n`);
    await stopped;
  }
  stopping = true;
  const exits = [...workers.values()].map(
    (worker) =>
      new Promise<void>((resolve) => {
        if (worker.isDead()) return resolve();
        const kill = setTimeout(() => worker.process.kill('SIGKILL'), 30_000);
        worker.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        worker.process.kill('SIGTERM');
      }),
  );
  await Promise.all(exits);
  if (failed) logger.error('a router process could not start; stopped the group');
  return failed ? 1 : 0;
}
