// One line-rate worker process for bench/router/stream.ts: the real worker host (startWorker:
// Worker gRPC service, NATS join/heartbeat/load, Redis lease) on the real Engine, with the
// LineRateExecutor in place of the model. Prints one JSON ready line as `tandem worker` does.
//   node bench/router/stream/fake-worker.ts --model DIR --nats URL --redis URL --worker-id ID
//     [--step-ms 1] [--max-running 1024]
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Logger, untilSignal } from '@tandem/common';
import { Engine } from '@tandem/runtime';
import { startWorker } from '@tandem/worker';
import { LineRateExecutor } from './line-rate-executor.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    nats: { type: 'string' },
    redis: { type: 'string' },
    'worker-id': { type: 'string' },
    'step-ms': { type: 'string', default: '1' },
    'max-running': { type: 'string', default: '1024' },
  },
});
if (values.model === undefined || values.nats === undefined || values.redis === undefined) {
  throw new Error('--model, --nats and --redis are required');
}
const modelDir = resolve(values.model);
const maxRunning = Number(values['max-running']);
const pageSize = 16;
const executor = new LineRateExecutor({
  modelDir,
  // Room for every running sequence's prompt and up to 4k output tokens.
  numPages: maxRunning * 260,
  pageSize,
  stepMs: Number(values['step-ms']),
});
const engine = new Engine(executor, {
  maxBatchTokens: maxRunning * 64,
  maxRunningSequences: maxRunning,
  maxPrefillChunkTokens: 2048,
  enablePrefixCache: true,
  queuePolicy: 'fcfs',
  decodeReserveTokens: 16,
});
const logger = new Logger();
const worker = await startWorker({
  engine,
  model: { modelName: basename(modelDir), modelInfo: engine.modelInfo, kvLayout: engine.kvLayout },
  device: 'cpu',
  port: 0,
  workerId: values['worker-id'] ?? null,
  natsUrl: values.nats,
  redisUrl: values.redis,
  logger,
  metricsEnabled: false,
});
process.stdout.write(
  `${JSON.stringify({ event: 'ready', workerId: worker.workerId, grpcAddress: worker.grpcAddress, port: worker.port, pid: process.pid })}\n`,
);
await untilSignal(logger);
await worker.close(1000);
process.exit(0);
