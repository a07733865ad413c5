// The load of bench/router/stream.ts, in its own process: C streaming /v1/completions clients over
// node:http keep-alive (one connection each, one request after another), and D streams straight
// to the workers over gRPC (the worker's own ITL in the same run). The SSE parser only counts
// bytes: every generated token is one whole word, so a chunk's tokens are its spaces less the one
// after `data:` (the first token of a choice loses its leading space, hence +1 on the first).
// Prints `{"event":"window-start"}` and `{"event":"window-end"}` lines as the measuring window
// opens and closes, then one JSON result line.
import { Agent, request as httpRequest } from 'node:http';
import { parseArgs } from 'node:util';
import { createGrpcClient } from '@tandem/common';
import { Worker } from '@tandem/proto';
import { ItlHistogram } from './itl-histogram.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    model: { type: 'string' },
    clients: { type: 'string', default: '1000' },
    'tokens-per-request': { type: 'string', default: '256' },
    'warmup-s': { type: 'string', default: '5' },
    'duration-s': { type: 'string', default: '15' },
    'direct-workers': { type: 'string', default: '' },
    'direct-streams': { type: 'string', default: '8' },
    'prompt-ids': { type: 'string', default: '1,200,131,80,73,108,424,330,15,85,16,33' },
  },
});
const port = Number(values.port);
const numClients = Number(values.clients);
const maxTokens = Number(values['tokens-per-request']);
const warmupMs = Number(values['warmup-s']) * 1000;
const durationMs = Number(values['duration-s']) * 1000;
const promptIds = values['prompt-ids'].split(',').map(Number);
const directAddresses = values['direct-workers'].split(',').filter((a) => a.length > 0);
const numDirect = directAddresses.length === 0 ? 0 : Number(values['direct-streams']);

interface PathStats {
  itl: ItlHistogram;
  numTokens: number;
  /** SSE events / gRPC messages that carried tokens. */
  numEvents: number;
  numRequests: number;
  numErrors: number;
}
const newStats = (): PathStats => ({
  itl: new ItlHistogram(),
  numTokens: 0,
  numEvents: 0,
  numRequests: 0,
  numErrors: 0,
});
const routerStats = newStats();
const directStats = newStats();

const startedAt = performance.now();
let measuring = false;
let stopping = false;

const body = Buffer.from(
  JSON.stringify({
    model: values.model,
    prompt: promptIds,
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
  }),
);
const agent = new Agent({ keepAlive: true, maxSockets: numClients, maxFreeSockets: numClients });

/** One streaming completion; resolves when the response ends. */
function streamOnce(): Promise<void> {
  return new Promise((resolve) => {
    let first = true;
    let lastAtMs = 0;
    let spaces = 0;
    let previous = 0;
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/completions',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        if (res.statusCode !== 200) {
          if (measuring) routerStats.numErrors++;
          res.resume();
          res.on('end', resolve);
          return;
        }
        res.on('data', (chunk: Buffer) => {
          const atMs = performance.now();
          for (let i = 0; i < chunk.length; i++) {
            const byte = chunk[i]!;
            if (byte === 0x20) spaces++;
            else if (byte === 0x0a && previous === 0x0a) {
              // An event ended: `data: ` has the one space that is no token.
              let numTokens = spaces - 1;
              if (first && numTokens >= 0) {
                numTokens++;
                first = false;
              } else if (numTokens > 0 && measuring) routerStats.itl.add(atMs - lastAtMs, numTokens);
              if (numTokens > 0) {
                lastAtMs = atMs;
                if (measuring) {
                  routerStats.numTokens += numTokens;
                  routerStats.numEvents++;
                }
              }
              spaces = 0;
            }
            previous = byte;
          }
        });
        res.on('end', () => {
          if (measuring) routerStats.numRequests++;
          resolve();
        });
        res.on('error', () => resolve());
      },
    );
    req.on('error', () => {
      if (measuring) routerStats.numErrors++;
      setTimeout(resolve, 100);
    });
    req.end(body);
  });
}

async function clientLoop(): Promise<void> {
  while (!stopping) await streamOnce();
}

let directSeq = 0;
async function directLoop(address: string): Promise<void> {
  const client = createGrpcClient(Worker, address);
  try {
    while (!stopping) {
      let lastAtMs = -1;
      try {
        for await (const response of client.generate({
          requestId: `direct-${process.pid}-${++directSeq}`,
          promptTokenIds: promptIds,
          sampling: { temperature: 0 },
          maxTokens,
          n: 1,
        })) {
          const atMs = performance.now();
          let numTokens = 0;
          for (const choice of response.choices) numTokens += choice.tokenIds.length;
          if (numTokens === 0) continue;
          if (measuring) {
            directStats.numTokens += numTokens;
            directStats.numEvents++;
            if (lastAtMs >= 0) directStats.itl.add(atMs - lastAtMs, numTokens);
          }
          lastAtMs = atMs;
        }
        if (measuring) directStats.numRequests++;
      } catch {
        if (measuring) directStats.numErrors++;
      }
    }
  } finally {
    client.close();
  }
}

const loops: Promise<void>[] = [];
for (let i = 0; i < numClients; i++) loops.push(clientLoop());
for (let i = 0; i < numDirect; i++) loops.push(directLoop(directAddresses[i % directAddresses.length]!));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
await sleep(warmupMs);
measuring = true;
const windowStart = performance.now();
process.stdout.write(`${JSON.stringify({ event: 'window-start' })}\n`);
await sleep(durationMs);
measuring = false;
const windowS = (performance.now() - windowStart) / 1000;
process.stdout.write(`${JSON.stringify({ event: 'window-end' })}\n`);
stopping = true;
const report = (stats: PathStats) => ({
  numTokens: stats.numTokens,
  numEvents: stats.numEvents,
  numRequests: stats.numRequests,
  numErrors: stats.numErrors,
  itl: stats.itl.toJSON(),
});
process.stdout.write(
  `${JSON.stringify({
    event: 'result',
    windowS,
    startedAfterMs: Math.round(windowStart - startedAt),
    router: report(routerStats),
    direct: report(directStats),
  })}\n`,
);
agent.destroy();
process.exit(0);
