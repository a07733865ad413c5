// Incremental detokenization for streams. Each push decodes a short window of tokens twice (up
// to the last emitted point, and to the end) and emits the difference, holding text back while
// it ends in U+FFFD (an incomplete UTF-8 sequence from byte-level tokens). The window restarts at
// the last emitted point, so decoders that treat a first token specially (Metaspace strips its
// leading space) treat both decodes alike, and the emitted pieces concatenate to exactly
// decode(all tokens). flush() at the end releases held text, U+FFFD included.

import type { TextTokenizer } from './tokenizer.ts';

export class IncrementalDetokenizer {
  private readonly tokenizer: TextTokenizer;
  private readonly skipSpecialTokens: boolean;
  private readonly tokenIds: number[] = [];
  private prefixOffset = 0; // window start: tokens before it are emitted and never re-decoded
  private readOffset = 0; // tokens before it are emitted
  private emitted = '';

  constructor(tokenizer: TextTokenizer, options: { skipSpecialTokens?: boolean } = {}) {
    this.tokenizer = tokenizer;
    this.skipSpecialTokens = options.skipSpecialTokens ?? true;
  }

  /** All text emitted so far. */
  get text(): string {
    return this.emitted;
  }

  /** Adds tokens; returns the text that became final (may be ''). */
  push(tokenIds: readonly number[]): string {
    for (const id of tokenIds) this.tokenIds.push(id);
    const full = this.decode(this.prefixOffset, this.tokenIds.length);
    if (full.endsWith('\uFFFD')) return '';
    return this.emit(full);
  }

  /** Ends the stream: returns whatever was held back. */
  flush(): string {
    return this.emit(this.decode(this.prefixOffset, this.tokenIds.length));
  }

  private emit(full: string): string {
    const prefix = this.decode(this.prefixOffset, this.readOffset);
    const text = full.slice(prefix.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.tokenIds.length;
    this.emitted += text;
    return text;
  }

  private decode(start: number, end: number): string {
    if (start === end) return '';
    return this.tokenizer.decode(this.tokenIds.slice(start, end), {
      skipSpecialTokens: this.skipSpecialTokens,
    });
  }
}
