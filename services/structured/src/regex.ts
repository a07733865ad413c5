// A practical regular-expression subset parsed to a grammar expression, matched against the
// whole output: literals, escapes (\d \w \s and negations, \n \t \r \f \v \0 \xHH \uHHHH
// \u{H...}), classes with ranges and negation, `.`, groups ((...), (?:...), (?<name>...)),
// alternation, quantifiers * + ? {m} {m,} {m,n} (lazy or possessive suffixes accepted: same
// language). `^` at the start and `$` at the end are accepted (the match is whole anyway).
// Backreferences, lookaround, word boundaries, \p{...} and inline flags are refused.
import { CharSet } from './char-set.ts';
import { InvalidRegexError } from './errors.ts';
import { alt, chars, type Expr, empty, repeat, seq } from './grammar.ts';

const digit = CharSet.range(0x30, 0x39);
const word = CharSet.fromRanges([
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
]);
const space = CharSet.fromString(' \t\n\r\f\v');
/** `.`: any character but line terminators (as JavaScript's RegExp). */
const dot = CharSet.of(0x0a, 0x0d, 0x2028, 0x2029).complement();
const maxRepeat = 10_000;
/** Deeper group nesting is refused (the parser recurses). */
const maxGroupDepth = 256;

export function parseRegex(pattern: string, param: string): Expr {
  return new RegexParser(pattern, param).parse();
}

class RegexParser {
  private readonly chars: number[];
  private pos = 0;
  private depth = 0;
  private readonly param: string;
  private readonly source: string;

  constructor(pattern: string, param: string) {
    this.chars = Array.from(pattern, (c) => c.codePointAt(0) ?? 0);
    this.source = pattern;
    this.param = param;
  }

  parse(): Expr {
    if (this.peek() === 0x5e /* ^ */) this.pos++;
    const expr = this.alternation(true);
    if (this.pos < this.chars.length) this.fail(`unexpected "${this.charAt(this.pos)}"`);
    return expr;
  }

  private fail(message: string, at = this.pos): never {
    const shown = this.source.length > 80 ? `${this.source.slice(0, 77)}...` : this.source;
    throw new InvalidRegexError(`invalid regex ${JSON.stringify(shown)}: ${message}`, this.param, at);
  }

  private peek(offset = 0): number {
    return this.chars[this.pos + offset] ?? -1;
  }

  private charAt(index: number): string {
    return String.fromCodePoint(this.chars[index] ?? 0);
  }

  private alternation(topLevel: boolean): Expr {
    const branches = [this.concatenation(topLevel)];
    while (this.peek() === 0x7c /* | */) {
      this.pos++;
      branches.push(this.concatenation(topLevel));
    }
    return alt(...branches);
  }

  private concatenation(topLevel: boolean): Expr {
    const items: Expr[] = [];
    for (;;) {
      const c = this.peek();
      if (c === -1 || c === 0x7c || c === 0x29 /* ) */) break;
      if (c === 0x24 /* $ */) {
        const atEnd = this.pos === this.chars.length - 1;
        if (!topLevel || !atEnd) this.fail('"$" is only supported at the end of the pattern');
        this.pos++;
        break;
      }
      if (c === 0x5e /* ^ */) this.fail('"^" is only supported at the start of the pattern');
      items.push(this.quantified(this.atom()));
    }
    return items.length === 0 ? empty : seq(...items);
  }

  private quantified(atom: Expr): Expr {
    let expr = atom;
    for (;;) {
      const c = this.peek();
      let min: number;
      let max: number | null;
      if (c === 0x2a /* * */) [min, max] = [0, null];
      else if (c === 0x2b /* + */) [min, max] = [1, null];
      else if (c === 0x3f /* ? */) [min, max] = [0, 1];
      else if (c === 0x7b /* { */) {
        const bounds = this.braces();
        if (bounds === null) return expr;
        [min, max] = bounds;
      } else return expr;
      if (c !== 0x7b) this.pos++;
      if (this.peek() === 0x3f || this.peek() === 0x2b) this.pos++; // lazy / possessive: same language
      expr = repeat(expr, min, max);
    }
  }

  /** {m}, {m,}, {m,n} at pos (consumed), or null (and nothing consumed) when it is a literal brace. */
  private braces(): [number, number | null] | null {
    const match = /^\{(\d+)(,(\d*))?\}/.exec(
      String.fromCodePoint(...this.chars.slice(this.pos, this.pos + 24)),
    );
    if (match === null) return null;
    const start = this.pos;
    this.pos += match[0].length;
    const min = Number(match[1]);
    const max = match[2] === undefined ? min : match[3] === '' ? null : Number(match[3]);
    if (max !== null && max < min) this.fail(`repeat {${min},${max}} has max below min`, start);
    if (min > maxRepeat || (max ?? 0) > maxRepeat)
      this.fail(`repeat counts above ${maxRepeat} are not supported`, start);
    return [min, max];
  }

  private atom(): Expr {
    const c = this.peek();
    const start = this.pos;
    if (c === 0x28 /* ( */) {
      if (++this.depth > maxGroupDepth) this.fail(`groups nested deeper than ${maxGroupDepth}`);
      this.pos++;
      if (this.peek() === 0x3f /* ? */) {
        const next = this.peek(1);
        if (next === 0x3a /* : */) this.pos += 2;
        else if (next === 0x3c /* < */ && this.peek(2) !== 0x3d && this.peek(2) !== 0x21)
          this.skipGroupName(3);
        else if (next === 0x50 /* P */ && this.peek(2) === 0x3c) this.skipGroupName(4);
        else this.fail('lookaround and inline flags are not supported', start);
      }
      const inner = this.alternation(false);
      if (this.peek() !== 0x29) this.fail('missing ")"', start);
      this.pos++;
      this.depth--;
      return inner;
    }
    if (c === 0x5b /* [ */) return chars(this.characterClass());
    if (c === 0x2e /* . */) {
      this.pos++;
      return chars(dot);
    }
    if (c === 0x5c /* \ */) return chars(this.escape(false));
    if (c === 0x2a || c === 0x2b || c === 0x3f)
      this.fail(`nothing to repeat before "${this.charAt(this.pos)}"`);
    if (c === 0x7b && this.braces() !== null) this.fail('nothing to repeat before "{"', start);
    this.pos++;
    return chars(CharSet.of(c));
  }

  private skipGroupName(prefix: number): void {
    const close = this.chars.indexOf(0x3e /* > */, this.pos + prefix);
    if (close === -1) this.fail('unterminated group name');
    this.pos = close + 1;
  }

  private characterClass(): CharSet {
    const start = this.pos;
    this.pos++;
    let negated = false;
    if (this.peek() === 0x5e) {
      negated = true;
      this.pos++;
    }
    let set = CharSet.empty;
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === -1) this.fail('missing "]"', start);
      if (c === 0x5d /* ] */ && !first) {
        this.pos++;
        break;
      }
      first = false;
      const lo = this.classAtom();
      if (this.peek() === 0x2d /* - */ && this.peek(1) !== 0x5d && this.peek(1) !== -1) {
        this.pos++;
        const hi = this.classAtom();
        if (lo.size !== 1 || hi.size !== 1) this.fail('a class range needs single characters at both ends');
        const from = lo.ranges[0] as number;
        const to = hi.ranges[0] as number;
        if (to < from) this.fail('class range out of order');
        set = set.union(CharSet.range(from, to));
      } else set = set.union(lo);
    }
    return negated ? set.complement() : set;
  }

  private classAtom(): CharSet {
    if (this.peek() === 0x5c) return this.escape(true);
    const c = this.peek();
    this.pos++;
    return CharSet.of(c);
  }

  private escape(inClass: boolean): CharSet {
    const start = this.pos;
    this.pos++;
    const c = this.peek();
    if (c === -1) this.fail('pattern ends with "\\"', start);
    this.pos++;
    const letter = String.fromCodePoint(c);
    switch (letter) {
      case 'd':
        return digit;
      case 'D':
        return digit.complement();
      case 'w':
        return word;
      case 'W':
        return word.complement();
      case 's':
        return space;
      case 'S':
        return space.complement();
      case 'n':
        return CharSet.of(0x0a);
      case 'r':
        return CharSet.of(0x0d);
      case 't':
        return CharSet.of(0x09);
      case 'f':
        return CharSet.of(0x0c);
      case 'v':
        return CharSet.of(0x0b);
      case '0':
        return CharSet.of(0);
      case 'b':
        if (inClass) return CharSet.of(0x08);
        return this.fail('word boundaries (\\b) are not supported', start);
      case 'x':
        return CharSet.of(this.hex(2, start));
      case 'u':
        if (this.peek() === 0x7b /* { */) {
          const close = this.chars.indexOf(0x7d, this.pos);
          if (close === -1) this.fail('unterminated \\u{...}', start);
          const digits = String.fromCodePoint(...this.chars.slice(this.pos + 1, close));
          if (!/^[0-9a-fA-F]{1,6}$/.test(digits) || Number.parseInt(digits, 16) > 0x10ffff)
            this.fail('bad \\u{...}', start);
          this.pos = close + 1;
          return CharSet.of(Number.parseInt(digits, 16));
        }
        return CharSet.of(this.hex(4, start));
      default:
        if (/[A-Za-z1-9]/.test(letter)) this.fail(`unsupported escape "\\${letter}"`, start);
        return CharSet.of(c);
    }
  }

  private hex(count: number, start: number): number {
    const digits = String.fromCodePoint(...this.chars.slice(this.pos, this.pos + count));
    if (digits.length !== count || !/^[0-9a-fA-F]+$/.test(digits)) this.fail('bad hex escape', start);
    this.pos += count;
    return Number.parseInt(digits, 16);
  }
}
