// The bench's receiving process: a KvReceiver on a zeroed pool, answering the parent over IPC.
import { createHash } from 'node:crypto';
import { KvReceiver, type KvSpec, MemoryRegion, poolBytesOf } from '@tandem/kvtransfer';

type Command =
  | { type: 'listen'; spec: KvSpec }
  | { type: 'digest'; offsets: number[]; length: number }
  | { type: 'wait'; transferId: bigint };

let region: MemoryRegion | null = null;
let receiver: KvReceiver | null = null;

process.on('message', async (command: Command) => {
  if (command.type === 'listen') {
    region = MemoryRegion.fromArrayBuffer(new ArrayBuffer(poolBytesOf(command.spec)));
    receiver = new KvReceiver({ host: '127.0.0.1', port: 0, spec: command.spec, region });
    process.send?.({ type: 'listening', port: receiver.port });
  } else if (command.type === 'wait') {
    const expected = receiver!.expect(command.transferId, 60_000);
    process.send?.({ type: 'expecting' });
    process.send?.({ type: 'waited', bytes: await expected });
  } else {
    const hash = createHash('sha256');
    for (const offset of command.offsets)
      hash.update(new Uint8Array(region!.buffer!, offset, command.length));
    process.send?.({ type: 'digest', hex: hash.digest('hex') });
  }
});
process.on('disconnect', () => receiver?.close());
