// Publishes the engine's KV events on NATS (tandem.kv.<id>.events) in sequence order. Events of
// one turn of the event loop go out as one KvEventBatch (split so no message nears NATS's 1 MiB
// payload limit); `publishedSeq` is what load reports announce, so a subscriber never sees a
// load report ahead of events that are merely not flushed yet.
import { type Logger, type NatsConnection, subjects } from '@tandem/common';
import { create, KvEventBatchSchema, toBinary } from '@tandem/proto';
import type { KvEvent } from '@tandem/runtime';
import { kvEventSize, toWireKvEvent } from './convert.ts';

/** About 40 bytes per block on the wire: 8192 blocks stay far below 1 MiB. */
const maxBlocksPerMessage = 8192;

export class KvEventPublisher {
  readonly #nc: NatsConnection;
  readonly #workerId: string;
  readonly #startedAtMs: bigint;
  readonly #logger: Logger;
  #pending: KvEvent[] = [];
  #flushScheduled = false;
  #publishedSeq = 0;

  constructor(nc: NatsConnection, workerId: string, startedAtMs: number, logger: Logger) {
    this.#nc = nc;
    this.#workerId = workerId;
    this.#startedAtMs = BigInt(startedAtMs);
    this.#logger = logger;
  }

  get publishedSeq(): number {
    return this.#publishedSeq;
  }

  /** Queues an event (the engine's onKvEvent listener). */
  readonly push = (event: KvEvent): void => {
    this.#pending.push(event);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.flush());
    }
  };

  flush(): void {
    this.#flushScheduled = false;
    const events = this.#pending;
    this.#pending = [];
    let batch: KvEvent[] = [];
    let numBlocks = 0;
    for (const event of events) {
      const size = kvEventSize(event);
      if (batch.length > 0 && numBlocks + size > maxBlocksPerMessage) {
        this.#publish(batch);
        batch = [];
        numBlocks = 0;
      }
      batch.push(event);
      numBlocks += size;
    }
    if (batch.length > 0) this.#publish(batch);
  }

  #publish(events: KvEvent[]): void {
    const message = create(KvEventBatchSchema, {
      workerId: this.#workerId,
      startedAtMs: this.#startedAtMs,
      events: events.map(toWireKvEvent),
    });
    try {
      this.#nc.publish(subjects.kvEvents(this.#workerId), toBinary(KvEventBatchSchema, message));
    } catch (error) {
      // Closed connection: subscribers will see the gap by sequence number and ask for a dump.
      this.#logger.warn('KV event publish failed', { error });
    }
    this.#publishedSeq = events.at(-1)?.seq ?? this.#publishedSeq;
  }
}
