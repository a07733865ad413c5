// A separate client process for the disconnect test: opens one Generate stream, prints 'started'
// after the first message, then keeps reading slowly until it is killed.
import { setTimeout as sleep } from 'node:timers/promises';
import { createGrpcClient } from '@tandem/common';
import { Worker } from '@tandem/proto';

const [address, requestId, promptText] = process.argv.slice(2);
const client = createGrpcClient(Worker, address!);
const promptTokenIds = promptText!.split(',').map(Number);
let started = false;
for await (const _ of client.generate({
  requestId: requestId!,
  promptTokenIds,
  maxTokens: 4000,
  ignoreEos: true,
  sampling: { temperature: 0 },
})) {
  if (!started) {
    started = true;
    process.stdout.write('started\n');
  }
  await sleep(50);
}
