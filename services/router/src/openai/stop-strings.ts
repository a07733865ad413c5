// Stop strings, applied to detokenized text at the router. Text that could still be the start of
// a stop string is held back, so a stream never shows part of a stop string that later matches.

export interface StopScanResult {
  /** Text safe to send now. */
  text: string;
  /** The stop string that ended the choice, or null. */
  matchedStop: string | null;
}

export class StopStringMatcher {
  readonly #stops: readonly string[];
  readonly #includeStop: boolean;
  /** Text received but not yet released (a possible stop-string prefix). */
  #held = '';
  #stopped = false;

  constructor(stops: readonly string[], includeStop: boolean) {
    this.#stops = stops.filter((stop) => stop.length > 0);
    this.#includeStop = includeStop;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Characters currently held back. */
  get numHeldChars(): number {
    return this.#held.length;
  }

  push(text: string): StopScanResult {
    if (this.#stopped) return { text: '', matchedStop: null };
    const buffer = this.#held + text;
    if (this.#stops.length === 0) return { text: buffer, matchedStop: null };
    let matchIndex = -1;
    let matchedStop: string | null = null;
    for (const stop of this.#stops) {
      const index = buffer.indexOf(stop);
      if (index !== -1 && (matchIndex === -1 || index < matchIndex)) {
        matchIndex = index;
        matchedStop = stop;
      }
    }
    if (matchedStop !== null) {
      this.#stopped = true;
      this.#held = '';
      const end = this.#includeStop ? matchIndex + matchedStop.length : matchIndex;
      return { text: buffer.slice(0, end), matchedStop };
    }
    const holdLength = this.#longestStopPrefixSuffix(buffer);
    this.#held = buffer.slice(buffer.length - holdLength);
    return { text: buffer.slice(0, buffer.length - holdLength), matchedStop: null };
  }

  /** The choice ended without a stop string: release what was held. */
  flush(): string {
    const text = this.#stopped ? '' : this.#held;
    this.#held = '';
    return text;
  }

  /** Length of the longest suffix of `buffer` that is a proper prefix of some stop string. */
  #longestStopPrefixSuffix(buffer: string): number {
    let best = 0;
    for (const stop of this.#stops) {
      const maxLength = Math.min(stop.length - 1, buffer.length);
      for (let length = maxLength; length > best; length--) {
        if (buffer.endsWith(stop.slice(0, length))) {
          best = length;
          break;
        }
      }
    }
    return best;
  }
}
