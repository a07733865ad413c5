// Feeds a WorkerDirectory from NATS: announcements (join, heartbeat, leave) and load reports, on
// the connection the process already has. A malformed message is logged and dropped.
import { fromBinary, WorkerAnnounceSchema, WorkerLoadSchema } from '@tandem/proto';
import type { Logger } from '../logger.ts';
import type { NatsConnection } from '../nats.ts';
import { subjects } from '../subjects.ts';
import type { WorkerDirectory } from './worker-directory.ts';

/** Subscribes; returns the unsubscribe. */
export function followWorkers<X>(
  nc: NatsConnection,
  directory: WorkerDirectory<X>,
  logger: Logger,
): () => void {
  const subscriptions = [
    nc.subscribe(subjects.announce, {
      callback: (error, message) => {
        if (error !== null) return;
        try {
          directory.onAnnounce(fromBinary(WorkerAnnounceSchema, message.data), Date.now());
        } catch (cause) {
          logger.warn('bad announcement', { error: cause });
        }
      },
    }),
    nc.subscribe(subjects.loadAll, {
      callback: (error, message) => {
        if (error !== null) return;
        try {
          directory.onLoad(fromBinary(WorkerLoadSchema, message.data), Date.now());
        } catch (cause) {
          logger.warn('bad load report', { error: cause });
        }
      },
    }),
  ];
  return () => {
    for (const subscription of subscriptions) subscription.unsubscribe();
  };
}
