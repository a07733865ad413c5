// Router replicas tell each other where they just sent a prompt (tandem.routers.routed), so each
// one's index gets the same optimistic entries as if a single router had routed everything: two
// replicas do not split a burst of one new prefix between workers while its KV events are still
// on their way. Fire-and-forget, like the KV events; a lost message only costs a cache hit.
import type { Logger, NatsConnection } from '@tandem/common';
import type { BlockKeys } from '../kv/block-keys.ts';
import type { KvIndex } from '../kv/kv-index.ts';

export const routedSubject = 'tandem.routers.routed';

interface RoutedMessage {
  replicaId: string;
  workerId: string;
  /** BlockKeys bytes, base64 (little-endian uint32 pairs). */
  keys: string;
}

export class RoutedFeed {
  readonly #nc: NatsConnection;
  readonly #replicaId: string;
  readonly #encoder = new TextEncoder();

  /** `owns`: whether a worker is this index's model's (one feed per model; default every worker). */
  constructor(
    nc: NatsConnection,
    replicaId: string,
    index: KvIndex,
    logger: Logger,
    owns: (workerId: string) => boolean = () => true,
  ) {
    this.#nc = nc;
    this.#replicaId = replicaId;
    const decoder = new TextDecoder();
    nc.subscribe(routedSubject, {
      callback: (error, message) => {
        if (error !== null) return;
        try {
          const routed = JSON.parse(decoder.decode(message.data)) as RoutedMessage;
          if (routed.replicaId === replicaId || !owns(routed.workerId)) return;
          const bytes = Buffer.from(routed.keys, 'base64');
          const keys = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2).slice();
          index.insertOptimistic(routed.workerId, keys, Date.now());
        } catch (cause) {
          logger.debug('bad routed message', { error: cause });
        }
      },
    });
  }

  publish(workerId: string, keys: BlockKeys): void {
    if (keys.length === 0) return;
    const message: RoutedMessage = {
      replicaId: this.#replicaId,
      workerId,
      keys: Buffer.from(keys.buffer, keys.byteOffset, keys.byteLength).toString('base64'),
    };
    try {
      this.#nc.publish(routedSubject, this.#encoder.encode(JSON.stringify(message)));
    } catch {
      // NATS reconnecting: the KV events will tell the other replicas soon enough.
    }
  }
}
