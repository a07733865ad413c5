// Inter-token latency as TokenTimer counts it: a batch of k tokens that arrives t after the
// previous one of the same stream is k gaps of t / k. 10 us buckets up to 2 s (the last bucket
// holds everything slower); sparse export so client processes can merge theirs.
const bucketUs = 10;
const numBuckets = 200_000;

export class ItlHistogram {
  readonly #counts = new Float64Array(numBuckets);
  #numSamples = 0;
  #sumMs = 0;

  /** `numTokens` tokens arrived `gapMs` after the stream's previous batch. */
  add(gapMs: number, numTokens: number): void {
    if (numTokens <= 0) return;
    const perTokenMs = gapMs / numTokens;
    const bucket = Math.min(numBuckets - 1, Math.floor((perTokenMs * 1000) / bucketUs));
    this.#counts[bucket]! += numTokens;
    this.#numSamples += numTokens;
    this.#sumMs += gapMs;
  }

  /** [bucket, count] pairs of the non-empty buckets, plus the sum. */
  toJSON(): { buckets: [number, number][]; sumMs: number } {
    const buckets: [number, number][] = [];
    this.#counts.forEach((count, bucket) => {
      if (count > 0) buckets.push([bucket, count]);
    });
    return { buckets, sumMs: this.#sumMs };
  }

  static merge(parts: readonly { buckets: [number, number][]; sumMs: number }[]): ItlHistogram {
    const merged = new ItlHistogram();
    for (const part of parts) {
      for (const [bucket, count] of part.buckets) {
        merged.#counts[bucket]! += count;
        merged.#numSamples += count;
      }
      merged.#sumMs += part.sumMs;
    }
    return merged;
  }

  /** Percentiles in ms (bucket upper edges) and the mean. */
  summary(): { numSamples: number; p50Ms: number; p90Ms: number; p99Ms: number; meanMs: number } {
    const at = (q: number): number => {
      const target = q * this.#numSamples;
      let seen = 0;
      for (let bucket = 0; bucket < numBuckets; bucket++) {
        seen += this.#counts[bucket]!;
        if (seen >= target && seen > 0) return ((bucket + 1) * bucketUs) / 1000;
      }
      return Number.NaN;
    };
    const round = (ms: number): number => Math.round(ms * 1000) / 1000;
    return {
      numSamples: this.#numSamples,
      p50Ms: round(at(0.5)),
      p90Ms: round(at(0.9)),
      p99Ms: round(at(0.99)),
      meanMs: round(this.#numSamples === 0 ? Number.NaN : this.#sumMs / this.#numSamples),
    };
  }
}
