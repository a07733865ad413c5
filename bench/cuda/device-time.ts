// Prints the cluster's device time so far, summed over the workers a router knows: busy (forward
// passes) and idle (between consecutive passes), overall and over passes of >= 64 sequences, from
// each worker's Info (the executor's own clock: CUDA events on a GPU). serve.sh reads it before
// and after a workload; the difference is that workload's GPU idle share.
//   node bench/cuda/device-time.ts http://127.0.0.1:8000
import { createGrpcClient } from '@tandem/common';
import { Worker } from '@tandem/proto';

const routerUrl = process.argv[2] ?? 'http://127.0.0.1:8000';
const listing = (await (await fetch(`${routerUrl}/debug`)).json()) as {
  processes: { role: string; grpcAddress: string | null }[];
};
const total = { busyMs: 0, idleMs: 0, busyMsLarge: 0, idleMsLarge: 0, workers: 0 };
for (const process of listing.processes) {
  if (process.role === 'router' || process.grpcAddress === null) continue;
  const client = createGrpcClient(Worker, process.grpcAddress);
  try {
    const info = await client.info({}, { timeoutMs: 5000 });
    total.busyMs += info.deviceBusyMs;
    total.idleMs += info.deviceIdleMs;
    total.busyMsLarge += info.deviceBusyMsLargeBatch;
    total.idleMsLarge += info.deviceIdleMsLargeBatch;
    total.workers++;
  } finally {
    client.close();
  }
}
console.log(JSON.stringify(total));
