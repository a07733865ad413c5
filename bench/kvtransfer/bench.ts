// TCP transport throughput: KV page batches of 1..256 MiB moved by kvtransfer between two
// processes on loopback, against a plain C++ send/recv of one contiguous buffer of the same size
// (native/kvtransfer/build/kvt_baseline) measured in the same run, size by size.
//   node bench/kvtransfer/bench.ts [--reps 5] [--streams 1,2,4] [--out bench/kvtransfer/results/tcp-loopback.json]
import { execFileSync, fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  KvSender,
  type KvSpec,
  MemoryRegion,
  newTransferId,
  pageBytesOf,
  pageCopyBytes,
  poolBytesOf,
} from '@tandem/kvtransfer';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    streams: { type: 'string', default: '1,2,4' },
    out: { type: 'string', default: fileURLToPath(new URL('./results/tcp-loopback.json', import.meta.url)) },
  },
});
const reps = Number(values.reps);
const streamCounts = values.streams.split(',').map(Number);
const MiB = 1 << 20;
const sizesMiB = [1, 4, 16, 64, 256];

// A Llama-3-8B-shaped bf16 pool: one page of K (or V) of one layer is 32 KiB, one page across all
// layers (K and V) is 2 MiB; 128 pages make the 256 MiB pool.
const spec: KvSpec = {
  model: 'bench-llama-8b-shape',
  dtype: 'bfloat16',
  numLayers: 32,
  numKvHeads: 8,
  headDim: 128,
  pageSize: 16,
  numPages: 128,
};
const pageBytes = pageBytesOf(spec);

/** A batch of `bytes`: scattered pages (a random permutation), all layers, or fewer layers for 1 MiB. */
function batchFor(bytes: number): { srcPages: number[]; dstPages: number[]; layers: number[] } {
  const perPageAllLayers = pageCopyBytes(spec, 1);
  const numPages = Math.max(1, bytes / perPageAllLayers);
  const numLayers = Math.min(spec.numLayers, bytes / (2 * pageBytes * numPages));
  const order = Array.from({ length: spec.numPages }, (_, i) => i);
  const seed = randomBytes(spec.numPages);
  order.sort((a, b) => seed[a]! - seed[b]! || a - b);
  return {
    srcPages: order.slice(0, numPages),
    dstPages: [...order.slice(0, numPages)].reverse(),
    layers: Array.from({ length: numLayers }, (_, i) => i),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const baselinePath = fileURLToPath(new URL('../../native/kvtransfer/build/kvt_baseline', import.meta.url));
/** Warm baseline repetitions: the binary runs one more and the first (cold buffers) is dropped. */
function baselineSeconds(bytes: number, count: number): number[] {
  const line = execFileSync(baselinePath, [String(count + 1), String(bytes)], { encoding: 'utf8' }).trim();
  return (JSON.parse(line) as { seconds: number[] }).seconds.slice(1);
}

/** More repetitions for small batches, whose times are short and noisy. */
function repsFor(bytes: number): number {
  return Math.max(reps, Math.min(50, Math.floor((256 * MiB) / bytes)));
}

const child = fork(fileURLToPath(new URL('./receiver.ts', import.meta.url)), [], {
  serialization: 'advanced',
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
function ask<T>(command: Record<string, unknown>, replyType: string): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (message: { type: string }): void => {
      if (message.type !== replyType) return;
      child.off('message', onMessage);
      resolve(message as T);
    };
    child.on('message', onMessage);
    child.send(command);
  });
}

const { port } = await ask<{ port: number }>({ type: 'listen', spec }, 'listening');
const pool = new Uint8Array(poolBytesOf(spec));
for (let offset = 0; offset < pool.length; offset += 65536) pool.set(randomBytes(65536), offset);
const region = MemoryRegion.fromArrayBuffer(pool.buffer);

interface Row {
  bytes: number;
  numStreams: number;
  numRanges: number;
  engineSeconds: number[];
  baselineSeconds: number[];
  engineGBps: number;
  baselineGBps: number;
  /** Best-of ratio engine / baseline. */
  ratio: number;
  engineMedianGBps: number;
  baselineMedianGBps: number;
  medianRatio: number;
}
const rows: Row[] = [];
let verified = false;

for (const numStreams of streamCounts) {
  const sender = await KvSender.connect({ host: '127.0.0.1', port, spec, region, numStreams });
  for (const sizeMiB of sizesMiB) {
    const bytes = sizeMiB * MiB;
    const batch = batchFor(bytes);
    const engineSeconds: number[] = [];
    const baselineTimes: number[] = [];
    // Same size back to back: one warm-up send, the engine's repetitions, then the baseline's.
    const announce = async (): Promise<bigint> => {
      const transferId = newTransferId();
      await ask({ type: 'wait', transferId }, 'expecting'); // the receiver drops unannounced transfers
      return transferId;
    };
    await sender.sendPages({ transferId: await announce(), ...batch, commit: true, timeoutMs: 60_000 });
    for (let r = 0; r < repsFor(bytes); r++) {
      const transferId = await announce();
      const started = process.hrtime.bigint();
      const sent = await sender.sendPages({ transferId, ...batch, commit: true, timeoutMs: 60_000 });
      engineSeconds.push(Number(process.hrtime.bigint() - started) / 1e9);
      if (sent !== bytes) throw new Error(`sent ${sent} bytes, expected ${bytes}`);
    }
    baselineTimes.push(...baselineSeconds(bytes, repsFor(bytes)));
    if (sizeMiB === 256 && !verified) {
      // The receiver's copy of a few destination pages equals the source pages.
      const pick = [0, 7, batch.srcPages.length - 1];
      const offsets = (pages: number[], layer: number): number[] =>
        pick.map((i) => (layer * 2 * spec.numPages + pages[i]!) * pageBytes);
      const local = createHash('sha256');
      for (const offset of offsets(batch.srcPages, 31))
        local.update(pool.subarray(offset, offset + pageBytes));
      const remote = await ask<{ hex: string }>(
        { type: 'digest', offsets: offsets(batch.dstPages, 31), length: pageBytes },
        'digest',
      );
      if (remote.hex !== local.digest('hex')) throw new Error('received pages differ from the sent ones');
      verified = true;
    }
    const engineGBps = bytes / Math.min(...engineSeconds) / 1e9;
    const baselineGBps = bytes / Math.min(...baselineTimes) / 1e9;
    const row: Row = {
      bytes,
      numStreams,
      numRanges: batch.srcPages.length * batch.layers.length * 2,
      engineSeconds,
      baselineSeconds: baselineTimes,
      engineGBps,
      baselineGBps,
      ratio: engineGBps / baselineGBps,
      engineMedianGBps: bytes / median(engineSeconds) / 1e9,
      baselineMedianGBps: bytes / median(baselineTimes) / 1e9,
      medianRatio: median(baselineTimes) / median(engineSeconds),
    };
    rows.push(row);
    console.log(
      `${String(sizeMiB).padStart(4)} MiB  streams ${numStreams}  kvtransfer ${engineGBps.toFixed(2)} GB/s` +
        ` (median ${(bytes / median(engineSeconds) / 1e9).toFixed(2)})  baseline ${baselineGBps.toFixed(2)} GB/s` +
        ` (median ${(bytes / median(baselineTimes) / 1e9).toFixed(2)})` +
        `  ratio best ${(row.ratio * 100).toFixed(0)} % median ${(row.medianRatio * 100).toFixed(0)} %`,
    );
  }
  sender.close();
}
child.disconnect();

const result = {
  bench: 'kvtransfer-tcp-loopback',
  date: new Date().toISOString(),
  machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? null, memoryBytes: totalmem() },
  spec,
  pageBytes,
  reps,
  method:
    'best of reps (more for small sizes) after one warm-up each; engine: sendPages of scattered pages ' +
    '(32 KiB ranges), commit acknowledged by the receiver process; baseline: kvt_baseline, one contiguous ' +
    'buffer, blocking send/recv over one connection, 1-byte ack; same run, size by size',
  verifiedContent: verified,
  rows,
};
writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`wrote ${values.out}`);
