// KV-cache events: every page the radix cache stores or drops, published with its chained block
// hash (block-hash.ts) and a per-worker sequence number that increases by one per event, so a
// subscriber that sees a gap asks for dumpBlocks() and rebuilds its view from it.

export interface StoredBlock {
  hash: bigint;
  parentHash: bigint | null;
  numTokens: number; // tokens in the block (always the page size: only full pages are stored)
}

export type KvEvent =
  | { type: 'stored'; seq: number; namespace: string; blocks: StoredBlock[] }
  | { type: 'removed'; seq: number; namespace: string; hashes: bigint[] }
  | { type: 'cleared'; seq: number };

export interface BlockDump {
  seq: number; // the seq of the last event reflected in `blocks`
  blocks: { namespace: string; hash: bigint; parentHash: bigint | null }[];
}

export type KvEventListener = (event: KvEvent) => void;

/** Numbers events and fans them out to listeners. seq starts at 1; 0 means "no event yet". */
export class KvEventLog {
  private lastSeq = 0;
  private readonly listeners = new Set<KvEventListener>();

  get seq(): number {
    return this.lastSeq;
  }

  subscribe(listener: KvEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stored(namespace: string, blocks: StoredBlock[]): void {
    this.emit({ type: 'stored', seq: ++this.lastSeq, namespace, blocks });
  }

  removed(namespace: string, hashes: bigint[]): void {
    this.emit({ type: 'removed', seq: ++this.lastSeq, namespace, hashes });
  }

  cleared(): void {
    this.emit({ type: 'cleared', seq: ++this.lastSeq });
  }

  private emit(event: KvEvent): void {
    // A throwing listener must not break the cache's bookkeeping or the other listeners.
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        process.emitWarning(
          `KV event listener threw: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
  }
}
