// One kvtransfer sender per decode worker endpoint, connected (with the layout handshake) on
// first use and dropped when it breaks, so the next prefill reconnects. Each connection says which
// transport it got and why; a GPU pool that ends up on TCP is a warning (never a silent fallback).
import type { Logger } from '@tandem/common';
import { KvSender, type KvSpec, type MemoryRegion } from '@tandem/kvtransfer';

export class KvSenderPool {
  private readonly spec: KvSpec;
  private readonly region: MemoryRegion;
  private readonly numStreams: number;
  private readonly senders = new Map<string, Promise<KvSender>>();
  private readonly logger: Logger | null;

  constructor(options: { spec: KvSpec; region: MemoryRegion; numStreams: number; logger?: Logger | null }) {
    this.spec = options.spec;
    this.region = options.region;
    this.numStreams = options.numStreams;
    this.logger = options.logger ?? null;
  }

  get(host: string, port: number): Promise<KvSender> {
    const key = `${host}:${port}`;
    let sender = this.senders.get(key);
    if (sender === undefined) {
      sender = KvSender.connect({
        host,
        port,
        spec: this.spec,
        region: this.region,
        numStreams: this.numStreams,
      });
      sender.then(
        (connected) => {
          const fields = {
            destination: key,
            transport: connected.transport,
            reason: connected.transportReason,
          };
          if (connected.transport === 'tcp' && this.region.device !== null) {
            this.logger?.warn('KV to this decode worker goes over TCP from a GPU pool', fields);
          } else {
            this.logger?.info('kv sender connected', fields);
          }
        },
        () => this.senders.delete(key),
      );
      this.senders.set(key, sender);
    }
    return sender;
  }

  /** Drops a sender whose connection failed (it is closed; the next get() reconnects). */
  discard(host: string, port: number, sender: KvSender): void {
    const key = `${host}:${port}`;
    void this.senders.get(key)?.then((current) => {
      if (current === sender) this.senders.delete(key);
    });
    sender.close();
  }

  async close(): Promise<void> {
    const senders = [...this.senders.values()];
    this.senders.clear();
    for (const sender of senders) {
      try {
        (await sender).close();
      } catch {
        // never connected
      }
    }
  }
}
