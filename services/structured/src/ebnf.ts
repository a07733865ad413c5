// EBNF grammars in GBNF form (llama.cpp: `name ::= ...`) or Lark form (`name: ...`):
// rules, "string" / 'string' literals (Lark's "..."i for case-insensitive), [character
// classes] with ranges and negation, `.`, /regex/ terminals, ( grouping ), alternation |,
// quantifiers * + ? {m} {m,} {m,n}, comments (# or //). The root is `root`, else `start`,
// else the first rule. Lark directives (%import, %ignore), rule modifiers and priorities are
// refused.
import { CharSet } from './char-set.ts';
import { InvalidGrammarError, InvalidRegexError } from './errors.ts';
import {
  alt,
  chars,
  type Expr,
  empty,
  type Grammar,
  literal,
  type Rule,
  ref,
  repeat,
  seq,
} from './grammar.ts';
import { parseRegex } from './regex.ts';

export function parseEbnf(text: string, param: string): Grammar {
  return new EbnfParser(text, param).parse();
}

/** Deeper group nesting is refused (the parser recurses). */
const maxGroupDepth = 256;
const nameStart = /[A-Za-z_]/;
const namePart = /[A-Za-z0-9_-]/;

class EbnfParser {
  private readonly text: string;
  private readonly param: string;
  private pos = 0;
  private depth = 0;

  constructor(text: string, param: string) {
    this.text = text;
    this.param = param;
  }

  parse(): Grammar {
    const rules = new Map<string, Rule>();
    let first: string | null = null;
    this.skipSpace();
    while (this.pos < this.text.length) {
      if (this.text[this.pos] === '%') this.fail('directives (%import, %ignore, ...) are not supported');
      if (this.text[this.pos] === '?' || this.text[this.pos] === '!')
        this.fail('rule modifiers (?rule, !rule) are not supported');
      const name = this.ruleStart();
      if (name === null) this.fail('expected a rule definition "name ::= ..."');
      if (rules.has(name)) this.fail(`rule "${name}" is defined twice`);
      first ??= name;
      rules.set(name, { expr: this.alternation() });
      this.skipSpace();
    }
    if (first === null) this.fail('the grammar has no rules');
    const root = rules.has('root') ? 'root' : rules.has('start') ? 'start' : first;
    return { rules, root };
  }

  private fail(message: string, at = this.pos): never {
    const before = this.text.slice(0, at);
    const line = before.split('\n').length;
    const column = at - before.lastIndexOf('\n');
    throw new InvalidGrammarError(
      `invalid grammar at line ${line}, column ${column}: ${message}`,
      this.param,
    );
  }

  private skipSpace(): void {
    for (;;) {
      const c = this.text[this.pos];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.pos++;
      else if (c === '#' || (c === '/' && this.text[this.pos + 1] === '/')) {
        while (this.pos < this.text.length && this.text[this.pos] !== '\n') this.pos++;
      } else return;
    }
  }

  /** At a rule definition: consumes `name ::=` (or `name:`) and returns the name; else null. */
  private ruleStart(): string | null {
    const match = /^([A-Za-z_][A-Za-z0-9_-]*)[ \t]*(::=|:(?!:))/.exec(
      this.text.slice(this.pos, this.pos + 256),
    );
    if (match === null) {
      if (/^[A-Za-z_][A-Za-z0-9_-]*\.\d+[ \t]*:/.test(this.text.slice(this.pos, this.pos + 256))) {
        this.fail('rule priorities (name.N:) are not supported');
      }
      return null;
    }
    this.pos += match[0].length;
    return match[1] as string;
  }

  private alternation(): Expr {
    const branches = [this.sequence()];
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] !== '|') return alt(...branches);
      this.pos++;
      branches.push(this.sequence());
    }
  }

  private sequence(): Expr {
    const items: Expr[] = [];
    for (;;) {
      this.skipSpace();
      const c = this.text[this.pos];
      if (c === undefined || c === '|' || c === ')') break;
      const save = this.pos;
      if (nameStart.test(c) && this.ruleStart() !== null) {
        this.pos = save; // the next rule begins
        break;
      }
      items.push(this.quantified(this.primary()));
    }
    return items.length === 0 ? empty : seq(...items);
  }

  private quantified(primary: Expr): Expr {
    let expr = primary;
    for (;;) {
      const c = this.text[this.pos];
      if (c === '*') expr = repeat(expr, 0, null);
      else if (c === '+') expr = repeat(expr, 1, null);
      else if (c === '?') expr = repeat(expr, 0, 1);
      else if (c === '{') {
        const match = /^\{\s*(\d+)\s*(,\s*(\d*)\s*)?\}/.exec(this.text.slice(this.pos, this.pos + 32));
        if (match === null) this.fail('bad repetition "{...}"');
        const min = Number(match[1]);
        const max = match[2] === undefined ? min : match[3] === '' ? null : Number(match[3]);
        if (max !== null && max < min) this.fail(`repetition {${min},${max}} has max below min`);
        this.pos += match[0].length - 1;
        expr = repeat(expr, min, max);
      } else return expr;
      this.pos++;
    }
  }

  private primary(): Expr {
    const c = this.text[this.pos] as string;
    if (c === '"' || c === "'") return this.literal(c);
    if (c === '[') return chars(this.characterClass());
    if (c === '.') {
      this.pos++;
      return chars(CharSet.all);
    }
    if (c === '(') {
      const start = this.pos;
      if (++this.depth > maxGroupDepth) this.fail(`groups nested deeper than ${maxGroupDepth}`);
      this.pos++;
      const inner = this.alternation();
      this.skipSpace();
      if (this.text[this.pos] !== ')') this.fail('missing ")"', start);
      this.pos++;
      this.depth--;
      return inner;
    }
    if (c === '/') return this.regex();
    if (nameStart.test(c)) {
      const start = this.pos;
      while (this.pos < this.text.length && namePart.test(this.text[this.pos] as string)) this.pos++;
      return ref(this.text.slice(start, this.pos));
    }
    return this.fail(`unexpected "${c}"`);
  }

  private literal(quote: string): Expr {
    const start = this.pos;
    this.pos++;
    let value = '';
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined || c === '\n') this.fail('unterminated string literal', start);
      if (c === quote) break;
      value += c === '\\' ? String.fromCodePoint(this.escape()) : this.nextChar();
    }
    this.pos++;
    if (this.text[this.pos] === 'i' && !namePart.test(this.text[this.pos + 1] ?? ' ')) {
      this.pos++;
      return seq(
        ...Array.from(value, (ch) => chars(CharSet.fromString(ch.toLowerCase() + ch.toUpperCase()))),
      );
    }
    return literal(value);
  }

  private nextChar(): string {
    const codePoint = this.text.codePointAt(this.pos) ?? 0;
    const ch = String.fromCodePoint(codePoint);
    this.pos += ch.length;
    return ch;
  }

  private characterClass(): CharSet {
    const start = this.pos;
    this.pos++;
    let negated = false;
    if (this.text[this.pos] === '^') {
      negated = true;
      this.pos++;
    }
    let set = CharSet.empty;
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail('missing "]"', start);
      if (c === ']') break;
      const lo = this.classChar();
      if (this.text[this.pos] === '-' && this.text[this.pos + 1] !== ']') {
        this.pos++;
        const hi = this.classChar();
        if (hi < lo) this.fail('class range out of order');
        set = set.union(CharSet.range(lo, hi));
      } else set = set.union(CharSet.of(lo));
    }
    this.pos++;
    return negated ? set.complement() : set;
  }

  private classChar(): number {
    if (this.text[this.pos] === '\\') return this.escape();
    return this.nextChar().codePointAt(0) ?? 0;
  }

  /** At a backslash: consumes the escape, returns its code point. */
  private escape(): number {
    const start = this.pos;
    this.pos++;
    const c = this.text[this.pos];
    if (c === undefined) this.fail('grammar ends with "\\"', start);
    this.pos++;
    const simple: Record<string, number> = { n: 0x0a, r: 0x0d, t: 0x09, f: 0x0c, v: 0x0b, '0': 0 };
    if (simple[c] !== undefined) return simple[c] as number;
    const hexLength = c === 'x' ? 2 : c === 'u' ? 4 : c === 'U' ? 8 : 0;
    if (hexLength > 0) {
      const digits = this.text.slice(this.pos, this.pos + hexLength);
      if (!new RegExp(`^[0-9a-fA-F]{${hexLength}}$`).test(digits)) this.fail('bad hex escape', start);
      const value = Number.parseInt(digits, 16);
      if (value > 0x10ffff) this.fail('escape beyond U+10FFFF', start);
      this.pos += hexLength;
      return value;
    }
    this.pos--;
    return this.nextChar().codePointAt(0) ?? 0;
  }

  private regex(): Expr {
    const start = this.pos;
    this.pos++;
    let body = '';
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined || c === '\n') this.fail('unterminated /regex/', start);
      if (c === '/') break;
      if (c === '\\' && this.text[this.pos + 1] === '/') {
        body += '/';
        this.pos += 2;
        continue;
      }
      if (c === '\\') {
        body += c + (this.text[this.pos + 1] ?? '');
        this.pos += 2;
        continue;
      }
      body += c;
      this.pos++;
    }
    this.pos++;
    if (/^[imsux]/.test(this.text[this.pos] ?? '')) this.fail('regex flags are not supported');
    try {
      return parseRegex(body, this.param);
    } catch (error) {
      if (error instanceof InvalidRegexError) this.fail(error.message, start);
      throw error;
    }
  }
}
