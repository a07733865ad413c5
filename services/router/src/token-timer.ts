// Inter-token latency and time per output token of one prompt's choices, as the router receives
// the worker's token batches: a batch of k tokens that arrives t after the previous one counts as
// k gaps of t / k (the worker merged steps for a slow reader); TPOT per choice is
// (last token - first token) / (tokens - 1).
import type { BoundHistogram } from '@tandem/common';

export class TokenTimer {
  readonly #itl: BoundHistogram;
  readonly #tpot: BoundHistogram;
  /** Per choice: first and last arrival (ms, performance.now) and tokens so far. */
  readonly #firstAtMs: number[] = [];
  readonly #lastAtMs: number[] = [];
  readonly #numTokens: number[] = [];

  constructor(metrics: { itl: BoundHistogram; tpot: BoundHistogram }) {
    this.#itl = metrics.itl;
    this.#tpot = metrics.tpot;
  }

  /** `numTokens` tokens of choice `choice` arrived at `atMs`. */
  onTokens(choice: number, numTokens: number, atMs: number): void {
    if (numTokens === 0) return;
    const lastAtMs = this.#lastAtMs[choice];
    if (lastAtMs === undefined) {
      this.#firstAtMs[choice] = atMs;
      this.#numTokens[choice] = numTokens;
    } else {
      const gapS = (atMs - lastAtMs) / numTokens / 1000;
      for (let i = 0; i < numTokens; i++) this.#itl.observe(gapS);
      this.#numTokens[choice] = (this.#numTokens[choice] ?? 0) + numTokens;
    }
    this.#lastAtMs[choice] = atMs;
  }

  /** Records each choice's TPOT (choices with at least two tokens). */
  finish(): void {
    this.#numTokens.forEach((numTokens, choice) => {
      const first = this.#firstAtMs[choice];
      const last = this.#lastAtMs[choice];
      if (numTokens >= 2 && first !== undefined && last !== undefined) {
        this.#tpot.observe((last - first) / (numTokens - 1) / 1000);
      }
    });
  }
}
