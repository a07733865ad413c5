// One choice's output: token ids -> incremental text -> stop strings, keeping each token's text
// and logprobs aligned with the text actually released (so a stop string also trims logprobs).
import { StopStringMatcher } from './stop-strings.ts';

/** Turns token ids into text one token at a time, never splitting a character. */
export interface IncrementalDecoder {
  /** Text completed by this token ('' while a character is incomplete). */
  push(tokenId: number): string;
  /** Several tokens at once: the text they complete (one decode for the batch, not one per token). */
  pushMany?(tokenIds: readonly number[]): string;
  /** Whatever is left at the end. */
  flush(): string;
}

export interface TopAlternative {
  tokenId: number;
  logprob: number;
}

export interface ReleasedToken {
  tokenId: number;
  /** The token's share of the text (may be '' inside a multi-byte character). */
  text: string;
  /** Offset of `text` in the choice's text. */
  textOffset: number;
  logprob: number | null;
  topLogprobs: TopAlternative[] | null;
}

export interface ChoiceRelease {
  text: string;
  tokens: ReleasedToken[];
  /** The stop string that ended the choice just now, or null. */
  matchedStop: string | null;
}

interface PendingToken {
  token: ReleasedToken;
  endOffset: number;
}

export class ChoiceOutput {
  readonly #decoder: IncrementalDecoder;
  readonly #matcher: StopStringMatcher;
  /** No stop strings: no token's own text is ever looked at without logprobs. */
  readonly #noStops: boolean;
  #pending: PendingToken[] = [];
  /** Characters decoded so far (before stop strings). */
  #numDecodedChars = 0;
  /** Characters released to the client. */
  #numReleasedChars = 0;
  #numReleasedTokens = 0;
  #finished = false;

  constructor(decoder: IncrementalDecoder, stops: readonly string[], includeStop: boolean) {
    this.#decoder = decoder;
    this.#matcher = new StopStringMatcher(stops, includeStop);
    this.#noStops = stops.length === 0;
  }

  /** True once a stop string matched or finish() ran: later tokens are dropped. */
  get finished(): boolean {
    return this.#finished || this.#matcher.stopped;
  }

  get numReleasedTokens(): number {
    return this.#numReleasedTokens;
  }

  push(
    tokenIds: readonly number[],
    logprobs: readonly number[] | null,
    topLogprobs: readonly (readonly TopAlternative[])[] | null,
  ): ChoiceRelease {
    if (this.finished) return { text: '', tokens: [], matchedStop: null };
    if (
      this.#noStops &&
      logprobs === null &&
      topLogprobs === null &&
      tokenIds.length > 1 &&
      this.#decoder.pushMany !== undefined
    ) {
      return this.#release(this.#pushBatch(tokenIds, this.#decoder.pushMany(tokenIds)), false);
    }
    let decoded = '';
    tokenIds.forEach((tokenId, i) => {
      const text = this.#decoder.push(tokenId);
      const token: ReleasedToken = {
        tokenId,
        text,
        textOffset: this.#numDecodedChars,
        logprob: logprobs?.[i] ?? null,
        topLogprobs: topLogprobs?.[i] !== undefined ? [...topLogprobs[i]] : null,
      };
      this.#numDecodedChars += text.length;
      this.#pending.push({ token, endOffset: this.#numDecodedChars });
      decoded += text;
    });
    return this.#release(decoded, false);
  }

  /**
   * A batch decoded at once (a worker's merged steps): its text is the last token's share, the
   * others' is '' (only counts and the whole text leave without logprobs or stop strings).
   */
  #pushBatch(tokenIds: readonly number[], text: string): string {
    const last = tokenIds.length - 1;
    for (let i = 0; i <= last; i++) {
      const share = i === last ? text : '';
      const token: ReleasedToken = {
        tokenId: tokenIds[i]!,
        text: share,
        textOffset: this.#numDecodedChars,
        logprob: null,
        topLogprobs: null,
      };
      this.#numDecodedChars += share.length;
      this.#pending.push({ token, endOffset: this.#numDecodedChars });
    }
    return text;
  }

  /** The worker finished this choice: release everything still held. */
  finish(): ChoiceRelease {
    if (this.finished) return { text: '', tokens: [], matchedStop: null };
    const tail = this.#decoder.flush();
    if (tail.length > 0 && this.#pending.length > 0) {
      const last = this.#pending.at(-1)!;
      last.token.text += tail;
      last.endOffset += tail.length;
    }
    this.#numDecodedChars += tail.length;
    const release = this.#release(tail, true);
    this.#finished = true;
    return release;
  }

  #release(decoded: string, atEnd: boolean): ChoiceRelease {
    const scan = this.#matcher.push(decoded);
    let text = scan.text;
    if (scan.matchedStop === null && atEnd) text += this.#matcher.flush();
    this.#numReleasedChars += text.length;
    let tokens: ReleasedToken[];
    if (scan.matchedStop !== null) {
      // Keep the tokens that start before the cut; the rest never happened for the client.
      const cut = this.#numReleasedChars;
      tokens = this.#pending.filter((p) => p.token.textOffset < cut).map((p) => p.token);
      const last = tokens.at(-1);
      if (last !== undefined && last.textOffset + last.text.length > cut) {
        last.text = last.text.slice(0, cut - last.textOffset);
      }
      this.#pending = [];
    } else if (atEnd) {
      tokens = this.#pending.map((p) => p.token);
      this.#pending = [];
    } else {
      const numReady = this.#pending.findIndex((p) => p.endOffset > this.#numReleasedChars);
      const count = numReady === -1 ? this.#pending.length : numReady;
      tokens = this.#pending.splice(0, count).map((p) => p.token);
    }
    this.#numReleasedTokens += tokens.length;
    return { text, tokens, matchedStop: scan.matchedStop };
  }
}
