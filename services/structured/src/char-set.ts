// Sets of Unicode scalar values as sorted, disjoint, non-adjacent inclusive ranges. Grammars
// speak in characters; the automaton later turns each set into UTF-8 byte ranges.

export const maxCodePoint = 0x10ffff;
const surrogateLo = 0xd800;
const surrogateHi = 0xdfff;

export class CharSet {
  /** [lo0, hi0, lo1, hi1, ...], sorted, disjoint, never adjacent, surrogates never included. */
  readonly ranges: readonly number[];

  private constructor(ranges: readonly number[]) {
    this.ranges = ranges;
  }

  static readonly empty = new CharSet([]);
  static readonly all = CharSet.fromRanges([[0, maxCodePoint]]);

  static of(...codePoints: number[]): CharSet {
    return CharSet.fromRanges(codePoints.map((c) => [c, c]));
  }

  static range(lo: number, hi: number): CharSet {
    return CharSet.fromRanges([[lo, hi]]);
  }

  static fromString(chars: string): CharSet {
    return CharSet.of(...Array.from(chars, (c) => c.codePointAt(0) ?? 0));
  }

  /** Any ranges (unsorted, overlapping) normalised; surrogates removed. */
  static fromRanges(pairs: readonly (readonly [number, number])[]): CharSet {
    const sorted = pairs.filter(([lo, hi]) => lo <= hi).sort((a, b) => a[0] - b[0]);
    const out: number[] = [];
    for (const [lo, hi] of sorted) {
      const n = out.length;
      if (n > 0 && lo <= (out[n - 1] as number) + 1) out[n - 1] = Math.max(out[n - 1] as number, hi);
      else out.push(lo, hi);
    }
    return new CharSet(withoutSurrogates(out));
  }

  get isEmpty(): boolean {
    return this.ranges.length === 0;
  }

  /** Number of code points. */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.ranges.length; i += 2)
      n += (this.ranges[i + 1] as number) - (this.ranges[i] as number) + 1;
    return n;
  }

  has(codePoint: number): boolean {
    const r = this.ranges;
    let lo = 0;
    let hi = r.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (codePoint < (r[2 * mid] as number)) hi = mid - 1;
      else if (codePoint > (r[2 * mid + 1] as number)) lo = mid + 1;
      else return true;
    }
    return false;
  }

  pairs(): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < this.ranges.length; i += 2)
      out.push([this.ranges[i] as number, this.ranges[i + 1] as number]);
    return out;
  }

  union(other: CharSet): CharSet {
    return CharSet.fromRanges([...this.pairs(), ...other.pairs()]);
  }

  complement(): CharSet {
    const out: [number, number][] = [];
    let next = 0;
    for (const [lo, hi] of this.pairs()) {
      if (lo > next) out.push([next, lo - 1]);
      next = hi + 1;
    }
    if (next <= maxCodePoint) out.push([next, maxCodePoint]);
    return CharSet.fromRanges(out);
  }

  intersect(other: CharSet): CharSet {
    return this.complement().union(other.complement()).complement();
  }

  subtract(other: CharSet): CharSet {
    return this.intersect(other.complement());
  }

  equals(other: CharSet): boolean {
    return this.ranges.length === other.ranges.length && this.ranges.every((v, i) => v === other.ranges[i]);
  }
}

function withoutSurrogates(ranges: number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < ranges.length; i += 2) {
    const lo = ranges[i] as number;
    const hi = ranges[i + 1] as number;
    if (hi < surrogateLo || lo > surrogateHi) out.push(lo, hi);
    else {
      if (lo < surrogateLo) out.push(lo, surrogateLo - 1);
      if (hi > surrogateHi) out.push(surrogateHi + 1, hi);
    }
  }
  return out;
}
