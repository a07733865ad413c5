// Constrained decoding in the step loop. A request's constraint (compiled before the request
// was queued, e.g. @tandem/structured's CompiledGrammar) makes one matcher per choice; before a
// step samples a choice, its matcher fills the choice's allowed-token bitmask, which rides to the
// executor in the sampling parameters (SamplingParams.allowedTokenMask); after the sample, the
// matcher accepts the token. The runtime depends on no grammar library: these interfaces are
// what it calls.
// Contract: a matcher's mask allows exactly the tokens acceptToken() takes, and allows some token
// until the output is complete (EOS accepted: isCompleted()), which ends the choice.

import type { SamplingParams } from './executor-port.ts';

/** One choice's position in a constraint. */
export interface TokenMatcher {
  /** Sets the bit of every allowed token id (bit id & 31 of word id >>> 5), clears the rest; the count. */
  fillNextTokenBitmask(mask: Uint32Array): number;
  /** Advances by the sampled token; false (and no change) when it was not allowed. */
  acceptToken(tokenId: number): boolean;
  /** EOS was accepted: the output is complete. */
  isCompleted(): boolean;
}

/** A compiled constraint: a matcher per choice. */
export interface TokenConstraint {
  /** Words of the masks its matchers fill: ceil(vocabulary size / 32). */
  readonly maskWords: number;
  newMatcher(): TokenMatcher;
}

/** A choice's constraint state: its matcher, and the mask and sampling parameters reused each step. */
export class ChoiceConstraint {
  readonly matcher: TokenMatcher;
  /** [maskWords] the allowed tokens of the next sample, host. */
  readonly mask: Uint32Array;
  /** The choice's sampling parameters with `mask` as allowedTokenMask. */
  readonly sampling: SamplingParams;

  constructor(constraint: TokenConstraint, sampling: SamplingParams) {
    this.matcher = constraint.newMatcher();
    this.mask = new Uint32Array(constraint.maskWords);
    this.sampling = { ...sampling, allowedTokenMask: this.mask };
  }

  /** The sampling parameters for the next sample, its mask filled from the matcher. */
  nextSampling(): SamplingParams {
    // A matcher that allows nothing (a bug: only a completed one may) leaves every token open,
    // so the batch still runs; acceptToken then refuses the sample and the choice aborts.
    if (this.matcher.fillNextTokenBitmask(this.mask) === 0) this.mask.fill(0xffffffff);
    return this.sampling;
  }
}
