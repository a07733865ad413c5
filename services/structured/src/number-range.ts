// JSON numbers inside bounds, as grammar expressions: every string they match parses to a
// value within the bounds. Integers and fractions are split by integer part (same-length
// digit ranges, the classic range-to-regex construction) and the fraction digits compared
// position by position against the bounds' digits. At most 15 digits in all, so that distinct
// outputs are distinct doubles and a bound compared as decimal text holds after JSON.parse.
import { CharSet } from './char-set.ts';
import { alt, chars, type Expr, empty, literal, nothing, optional, repeat, seq } from './grammar.ts';

/** Digits in an output number at most (DBL_DIG). */
export const maxDigits = 15;
const maxMagnitude = 10n ** BigInt(maxDigits) - 1n;

const anyDigit = chars(CharSet.range(0x30, 0x39));
const nonZeroDigit = chars(CharSet.range(0x31, 0x39));

function digitRange(lo: number, hi: number): Expr {
  return lo > hi ? nothing : chars(CharSet.range(0x30 + lo, 0x30 + hi));
}

function digits(min: number, max: number): Expr {
  return max < min ? nothing : repeat(anyDigit, min, max);
}

/** A non-negative exact decimal: integer part and fraction digits without trailing zeros. */
export interface Decimal {
  int: bigint;
  frac: string;
}

export interface Bound {
  value: number;
  inclusive: boolean;
}

/** |value| as an exact decimal of its shortest round-trip text (String(value)). */
export function decimalOf(value: number): Decimal {
  const text = Math.abs(value).toString();
  const [mantissa, exponentText] = text.split('e') as [string, string | undefined];
  const [intPart, fracPart = ''] = mantissa.split('.') as [string, string | undefined];
  let allDigits = intPart + fracPart;
  let point = intPart.length + Number(exponentText ?? 0);
  if (point < 0) {
    allDigits = '0'.repeat(-point) + allDigits;
    point = 0;
  }
  if (point > allDigits.length) allDigits += '0'.repeat(point - allDigits.length);
  const int = BigInt(allDigits.slice(0, point) || '0');
  const frac = allDigits.slice(point).replace(/0+$/, '');
  return { int, frac };
}

/** Integers (no leading zeros, no "-0") within [lo, hi]; null bounds are the 15-digit limits. */
export function integerRange(lo: bigint | null, hi: bigint | null): Expr {
  const from = lo === null || lo < -maxMagnitude ? -maxMagnitude : lo;
  const to = hi === null || hi > maxMagnitude ? maxMagnitude : hi;
  if (from > to) return nothing;
  const parts: Expr[] = [];
  if (from < 0n) parts.push(seq(literal('-'), naturalRange(to < 0n ? -to : 1n, -from)));
  if (to >= 0n) parts.push(naturalRange(from > 0n ? from : 0n, to));
  return alt(...parts);
}

/** Decimal strings for a <= n <= b (0 <= a), no leading zeros. */
function naturalRange(a: bigint, b: bigint): Expr {
  if (a > b) return nothing;
  const parts: Expr[] = [];
  const aLength = a.toString().length;
  const bLength = b.toString().length;
  for (let length = aLength; length <= bLength; length++) {
    const lowest = length === 1 ? 0n : 10n ** BigInt(length - 1);
    const highest = 10n ** BigInt(length) - 1n;
    const lo = a > lowest ? a : lowest;
    const hi = b < highest ? b : highest;
    if (lo <= hi) parts.push(sameLengthRange(lo.toString(), hi.toString()));
  }
  return alt(...parts);
}

/** Digit strings of one length between x and y (x <= y, as text of equal length). */
function sameLengthRange(x: string, y: string): Expr {
  if (x.length === 0) return empty;
  const x0 = Number(x[0]);
  const y0 = Number(y[0]);
  const xRest = x.slice(1);
  const yRest = y.slice(1);
  if (x0 === y0) return seq(digitRange(x0, x0), sameLengthRange(xRest, yRest));
  if (/^0*$/.test(xRest) && /^9*$/.test(yRest))
    return seq(digitRange(x0, y0), digits(xRest.length, xRest.length));
  return alt(
    seq(digitRange(x0, x0), sameLengthRange(xRest, '9'.repeat(xRest.length))),
    seq(digitRange(x0 + 1, y0 - 1), digits(xRest.length, xRest.length)),
    seq(digitRange(y0, y0), sameLengthRange('0'.repeat(yRest.length), yRest)),
  );
}

/** Numbers (integer part, optional fraction, no exponent) within the bounds; null: unbounded. */
export function numberRange(lo: Bound | null, hi: Bound | null): Expr {
  const parts: Expr[] = [];
  if (lo === null || lo.value < 0) {
    // x = -y with y > 0: y <= -lo and y >= -hi
    const yHi = lo === null ? null : { dec: decimalOf(lo.value), inclusive: lo.inclusive };
    const yLo =
      hi === null || hi.value >= 0
        ? { dec: zero, inclusive: false }
        : { dec: decimalOf(hi.value), inclusive: hi.inclusive };
    parts.push(seq(literal('-'), magnitudeRange(yLo, yHi)));
  }
  if (hi === null || hi.value >= 0) {
    const xLo =
      lo === null || lo.value < 0
        ? { dec: zero, inclusive: true }
        : { dec: decimalOf(lo.value), inclusive: lo.inclusive };
    const xHi = hi === null ? null : { dec: decimalOf(hi.value), inclusive: hi.inclusive };
    parts.push(magnitudeRange(xLo, xHi));
  }
  return alt(...parts);
}

const zero: Decimal = { int: 0n, frac: '' };

interface DecimalBound {
  dec: Decimal;
  inclusive: boolean;
}

/** Non-negative decimals in [lo, hi] (hi null: below 10^15). */
function magnitudeRange(lo: DecimalBound, hi: DecimalBound | null): Expr {
  const a = lo.dec.int;
  const b = hi === null ? maxMagnitude : hi.dec.int;
  if (a > b || a > maxMagnitude) return nothing;
  const room = (n: bigint): number => maxDigits - n.toString().length;
  const parts: Expr[] = [];
  if (a === b) {
    parts.push(seq(literal(a.toString()), fraction(lo, hi, room(a))));
    return alt(...parts);
  }
  parts.push(seq(literal(a.toString()), fraction(lo, null, room(a))));
  const middleTop = hi === null ? b : b - 1n;
  for (let length = (a + 1n).toString().length; length <= middleTop.toString().length; length++) {
    const lowest = length === 1 ? 0n : 10n ** BigInt(length - 1);
    const highest = 10n ** BigInt(length) - 1n;
    const from = a + 1n > lowest ? a + 1n : lowest;
    const to = middleTop < highest ? middleTop : highest;
    if (from <= to)
      parts.push(seq(sameLengthRange(from.toString(), to.toString()), anyFraction(maxDigits - length)));
  }
  if (hi !== null) parts.push(seq(literal(b.toString()), fraction(null, hi, room(b))));
  return alt(...parts);
}

function anyFraction(room: number): Expr {
  return room <= 0 ? empty : optional(seq(literal('.'), digits(1, room)));
}

/**
 * The optional fraction of a number whose integer part equals lo's (when lo is given) and/or
 * hi's (when hi is given): ".ddd" with at most `room` digits, compared digit by digit.
 */
function fraction(lo: DecimalBound | null, hi: DecimalBound | null, room: number): Expr {
  const loDigits = lo?.dec.frac ?? '';
  const hiDigits = hi?.dec.frac ?? '';
  // Past a bound's digits its value continues with zeros.
  const digitAt = (text: string, i: number): number => (i < text.length ? Number(text[i]) : 0);
  const endsOk = (i: number, tightLo: boolean, tightHi: boolean): boolean => {
    if (tightLo && lo !== null && (i < loDigits.length || !lo.inclusive)) return false;
    if (tightHi && hi !== null && i >= hiDigits.length && !hi.inclusive) return false;
    return true;
  };
  const rest = (i: number, tightLo: boolean, tightHi: boolean): Expr => {
    if (!tightLo && !tightHi) return digits(0, room - i);
    const options: Expr[] = [];
    if (endsOk(i, tightLo, tightHi)) options.push(empty);
    if (i < room) {
      const dLo = tightLo ? digitAt(loDigits, i) : 0;
      const dHi = tightHi ? digitAt(hiDigits, i) : 9;
      for (let d = dLo; d <= dHi; d++) {
        const nextLo = tightLo && d === dLo;
        const nextHi = tightHi && d === dHi;
        if (nextLo || nextHi) options.push(seq(digitRange(d, d), rest(i + 1, nextLo, nextHi)));
        else {
          // a run of digits that leaves both bounds behind
          let e = d;
          while (e + 1 <= dHi && !(tightHi && e + 1 === dHi)) e++;
          options.push(seq(digitRange(d, e), digits(0, room - i - 1)));
          d = e;
        }
      }
    }
    return alt(...options);
  };
  const tightLo = lo !== null;
  const tightHi = hi !== null;
  const withDigits = room > 0 ? nonEmptyFraction(rest, tightLo, tightHi) : nothing;
  return alt(endsOk(0, tightLo, tightHi) ? empty : nothing, seq(literal('.'), withDigits));
}

/** The fraction digits from position 0, at least one digit. */
function nonEmptyFraction(
  rest: (i: number, tightLo: boolean, tightHi: boolean) => Expr,
  tightLo: boolean,
  tightHi: boolean,
): Expr {
  const full = rest(0, tightLo, tightHi);
  // rest(0) may accept the empty remainder (when ending at 0 digits is allowed); drop it.
  const isEmpty = (e: Expr): boolean => e.type === 'seq' && e.items.length === 0;
  if (full.type === 'alt') return alt(...full.items.filter((item) => !isEmpty(item)));
  return isEmpty(full) ? nothing : full;
}

/** Unbounded JSON numbers with at most 15 integer and 15 fraction digits and a 2-digit exponent. */
export const anyNumber: Expr = seq(
  optional(literal('-')),
  alt(literal('0'), seq(nonZeroDigit, digits(0, maxDigits - 1))),
  optional(seq(literal('.'), digits(1, maxDigits))),
  optional(seq(chars(CharSet.fromString('eE')), optional(chars(CharSet.fromString('+-'))), digits(1, 2))),
);

/** Unbounded JSON integers up to 15 digits. */
export const anyInteger: Expr = seq(
  optional(literal('-')),
  alt(literal('0'), seq(nonZeroDigit, digits(0, maxDigits - 1))),
);
