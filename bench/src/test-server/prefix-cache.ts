// The test server's model of a prefix cache: full blocks of `blockTokens` tokens keyed by a
// chain of hashes (a block's key includes everything before it), as real servers report
// usage.prompt_tokens_details.cached_tokens.
import { createHash } from 'node:crypto';

export class BlockPrefixCache {
  readonly blockTokens: number;
  #blocks = new Set<string>();

  constructor(blockTokens: number) {
    this.blockTokens = blockTokens;
  }

  #keys(tokens: readonly string[]): string[] {
    const keys: string[] = [];
    let parent = '';
    for (let end = this.blockTokens; end <= tokens.length; end += this.blockTokens) {
      parent = createHash('sha1')
        .update(parent)
        .update('\u0000')
        .update(tokens.slice(end - this.blockTokens, end).join('\u0001'))
        .digest('hex');
      keys.push(parent);
    }
    return keys;
  }

  /** Cached leading tokens; at least one prompt token is always computed. */
  match(tokens: readonly string[]): number {
    let numCached = 0;
    for (const key of this.#keys(tokens)) {
      if (!this.#blocks.has(key)) break;
      numCached += this.blockTokens;
    }
    return Math.min(numCached, Math.max(0, tokens.length - 1));
  }

  insert(tokens: readonly string[]): void {
    for (const key of this.#keys(tokens)) this.#blocks.add(key);
  }
}
