// The worker's own step costs, fitted by least squares over its recent steps and sent in every
// load report, so a router predicts time to first token from what this worker measured rather
// than from a guess:
//   stepMs = baseMs + prefillMsPerToken x prompt tokens computed + decodeMsPerSequence x decoding sequences
// A ring of the last `capacity` steps keeps the fit current (a worker slowed by its neighbours on
// a shared host shows it within a few hundred steps) and its cost bounded.

/** One step: what it computed and how long it took. */
export interface StepSample {
  numPrefillTokens: number;
  numDecodeTokens: number;
  seconds: number;
}

export interface StepCostFit {
  baseMs: number;
  prefillMsPerToken: number;
  decodeMsPerSequence: number;
  /** 1 - residual / total sum of squares (1: exact; <= 0: no better than the mean). */
  rSquared: number;
  rmseMs: number;
  numSteps: number;
  /** Steps that computed prompt tokens: without them the prefill cost is not known. */
  numPrefillSteps: number;
}

/** Steps needed before a fit is reported. */
const minSteps = 8;

export class StepCostModel {
  readonly #capacity: number;
  readonly #prefill: Float64Array;
  readonly #decode: Float64Array;
  readonly #ms: Float64Array;
  #next = 0;
  #size = 0;

  constructor(capacity = 512) {
    this.#capacity = capacity;
    this.#prefill = new Float64Array(capacity);
    this.#decode = new Float64Array(capacity);
    this.#ms = new Float64Array(capacity);
  }

  record(step: StepSample): void {
    const i = this.#next;
    this.#prefill[i] = step.numPrefillTokens;
    this.#decode[i] = step.numDecodeTokens;
    this.#ms[i] = step.seconds * 1000;
    this.#next = (i + 1) % this.#capacity;
    this.#size = Math.min(this.#size + 1, this.#capacity);
  }

  /** The fit over the recorded steps, or null before `minSteps` of them. */
  fit(): StepCostFit | null {
    const n = this.#size;
    if (n < minSteps) return null;
    const x1 = this.#prefill.subarray(0, n);
    const x2 = this.#decode.subarray(0, n);
    const y = this.#ms.subarray(0, n);
    let m1 = 0;
    let m2 = 0;
    let my = 0;
    let numPrefillSteps = 0;
    for (let i = 0; i < n; i++) {
      m1 += x1[i]!;
      m2 += x2[i]!;
      my += y[i]!;
      if (x1[i]! > 0) numPrefillSteps++;
    }
    m1 /= n;
    m2 /= n;
    my /= n;
    // Centred normal equations (the intercept drops out): [s11 s12; s12 s22] b = [s1y; s2y].
    let s11 = 0;
    let s12 = 0;
    let s22 = 0;
    let s1y = 0;
    let s2y = 0;
    let syy = 0;
    for (let i = 0; i < n; i++) {
      const d1 = x1[i]! - m1;
      const d2 = x2[i]! - m2;
      const dy = y[i]! - my;
      s11 += d1 * d1;
      s12 += d1 * d2;
      s22 += d2 * d2;
      s1y += d1 * dy;
      s2y += d2 * dy;
      syy += dy * dy;
    }
    let b1 = 0;
    let b2 = 0;
    const det = s11 * s22 - s12 * s12;
    // A regressor that never varied (no prefill steps, a constant batch) has no slope to fit:
    // fit the other alone.
    if (det > 1e-9 * Math.max(1, s11 * s22)) {
      b1 = (s1y * s22 - s2y * s12) / det;
      b2 = (s2y * s11 - s1y * s12) / det;
    } else if (s11 > 0) {
      b1 = s1y / s11;
    } else if (s22 > 0) {
      b2 = s2y / s22;
    }
    const b0 = my - b1 * m1 - b2 * m2;
    let sse = 0;
    for (let i = 0; i < n; i++) {
      const residual = y[i]! - (b0 + b1 * x1[i]! + b2 * x2[i]!);
      sse += residual * residual;
    }
    return {
      baseMs: b0,
      prefillMsPerToken: b1,
      decodeMsPerSequence: b2,
      rSquared: syy > 0 ? 1 - sse / syy : 1,
      rmseMs: Math.sqrt(sse / n),
      numSteps: n,
      numPrefillSteps,
    };
  }
}
