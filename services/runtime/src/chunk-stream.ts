// The per-request stream between the step loop (producer) and a generate() caller (consumer).
// Never blocks the producer: chunks queue, and a consumer that falls behind gets consecutive
// chunks of the same choice merged into one.

import type { TokenChunk } from './engine.ts';

export class ChunkStream implements AsyncIterable<TokenChunk> {
  private readonly queue: TokenChunk[] = [];
  private wake: (() => void) | null = null;
  private done = false;
  private error: unknown = null;
  private readonly onCancel: () => void;

  /** onCancel runs when the consumer stops iterating before the stream ended. */
  constructor(onCancel: () => void) {
    this.onCancel = onCancel;
  }

  push(chunk: TokenChunk): void {
    const last = this.queue.at(-1);
    if (last !== undefined && last.choiceIndex === chunk.choiceIndex && last.finishReason === null) {
      last.tokenIds.push(...chunk.tokenIds);
      if (last.logprobs !== null && chunk.logprobs !== null) last.logprobs.push(...chunk.logprobs);
      if (last.topLogprobs !== null && chunk.topLogprobs !== null)
        last.topLogprobs.push(...chunk.topLogprobs);
      last.finishReason = chunk.finishReason;
      last.matchedStopTokenId = chunk.matchedStopTokenId;
      last.numCachedTokens = chunk.numCachedTokens;
    } else {
      this.queue.push(chunk);
    }
    this.notify();
  }

  /** Ends the stream; with an error, the consumer's next read throws it (after queued chunks). */
  end(error: unknown): void {
    this.done = true;
    this.error = error;
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TokenChunk> {
    try {
      for (;;) {
        const chunk = this.queue.shift();
        if (chunk !== undefined) {
          yield chunk;
          continue;
        }
        if (this.done) {
          if (this.error !== null) throw this.error;
          return;
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      if (!this.done) this.onCancel();
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}
