// A kvtransfer endpoint in its own process, driven by the test over the IPC channel: it listens
// (receiver role) or connects (sender role) on a real loopback socket, with a zeroed region.
import { KvReceiver, KvSender, type KvSpec, MemoryRegion, poolBytesOf } from '../src/index.ts';

type Command =
  | { type: 'listen'; spec: KvSpec; ioTimeoutMs: number }
  | { type: 'wait'; transferId: bigint; timeoutMs: number }
  | { type: 'progress'; transferId: bigint }
  | { type: 'release'; transferId: bigint }
  | { type: 'read'; offset: number; length: number }
  | { type: 'connect'; spec: KvSpec; port: number; numStreams: number; fill: number }
  | {
      type: 'sendPages';
      transferId: bigint;
      srcPages: number[];
      dstPages: number[];
      layers: number[] | null;
      commit: boolean;
      timeoutMs: number;
    };

let region: MemoryRegion | null = null;
let receiver: KvReceiver | null = null;
let sender: KvSender | null = null;

function reply(message: unknown): void {
  process.send?.(message);
}

async function handle(command: Command): Promise<void> {
  switch (command.type) {
    case 'listen': {
      region = MemoryRegion.fromArrayBuffer(new ArrayBuffer(poolBytesOf(command.spec)));
      receiver = new KvReceiver({
        host: '127.0.0.1',
        port: 0,
        spec: command.spec,
        region,
        ioTimeoutMs: command.ioTimeoutMs,
      });
      receiver.onEvent((event) => {
        reply({
          type: 'event',
          event: event.type,
          error: event.type === 'failed' || event.type === 'rejected' ? event.error.name : null,
          transport: event.type === 'completed' || event.type === 'failed' ? event.transport : null,
        });
      });
      reply({ type: 'listening', port: receiver.port, capabilities: receiver.capabilities() });
      return;
    }
    case 'wait': {
      const expected = receiver!.expect(command.transferId, command.timeoutMs);
      reply({ type: 'expecting', transferId: command.transferId });
      try {
        const bytes = await expected;
        reply({ type: 'waited', ok: true, bytes });
      } catch (error) {
        reply({ type: 'waited', ok: false, error: (error as Error).name, message: (error as Error).message });
      }
      return;
    }
    case 'release':
      await receiver!.release(command.transferId);
      reply({ type: 'released' });
      return;
    case 'progress':
      reply({ type: 'progress', bytes: receiver!.bytesReceived(command.transferId) });
      return;
    case 'read':
      reply({ type: 'data', bytes: new Uint8Array(region!.buffer!, command.offset, command.length).slice() });
      return;
    case 'connect': {
      const buffer = new ArrayBuffer(poolBytesOf(command.spec));
      new Uint8Array(buffer).fill(command.fill);
      region = MemoryRegion.fromArrayBuffer(buffer);
      sender = await KvSender.connect({
        host: '127.0.0.1',
        port: command.port,
        spec: command.spec,
        region,
        numStreams: command.numStreams,
      });
      reply({ type: 'connected' });
      return;
    }
    case 'sendPages': {
      try {
        const bytes = await sender!.sendPages(command);
        reply({ type: 'sent', ok: true, bytes });
      } catch (error) {
        reply({ type: 'sent', ok: false, error: (error as Error).name });
      }
      return;
    }
  }
}

process.on('message', (command: Command) => {
  handle(command).catch((error: unknown) => reply({ type: 'crashed', message: String(error) }));
});
process.on('disconnect', () => {
  receiver?.close();
  sender?.close();
});
