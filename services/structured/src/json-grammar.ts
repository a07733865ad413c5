// JSON's own lexical grammar: whitespace (bounded, so it cannot run on forever), string
// characters and escapes, and the rules for any JSON value (json_object mode and schemas that
// leave a value free). Rule names start with "json-" and are shared by every schema position.
import { CharSet } from './char-set.ts';
import {
  alt,
  chars,
  type Expr,
  empty,
  literal,
  optional,
  type Rule,
  ref,
  repeat,
  seq,
  star,
} from './grammar.ts';
import { anyNumber } from './number-range.ts';

export interface JsonFormatOptions {
  /**
   * Whitespace between JSON tokens: 'none' (compact), or 'bounded': at each place JSON allows
   * it, nothing, one space, or a newline and up to maxIndent spaces or tabs. Default 'bounded'.
   */
  whitespace?: 'none' | 'bounded';
  /** Default 20. */
  maxIndent?: number;
}

/** Characters a JSON string holds unescaped: not '"', not '\', not U+0000..U+001F. */
export const plainStringChars = CharSet.fromRanges([[0x20, 0x10ffff]]).subtract(CharSet.fromString('"\\'));
const hex = CharSet.fromString('0123456789abcdefABCDEF');
const hexNoD = hex.subtract(CharSet.fromString('dD'));

/** \uXXXX outside the surrogate range (a lone surrogate would break length counting). */
const unicodeEscape = seq(
  literal('\\u'),
  alt(
    seq(chars(hexNoD), chars(hex), chars(hex), chars(hex)),
    seq(chars(CharSet.fromString('dD')), chars(CharSet.range(0x30, 0x37)), chars(hex), chars(hex)),
  ),
);

/** One character inside a JSON string (unescaped or one escape). */
export const stringChar: Expr = alt(
  chars(plainStringChars),
  seq(literal('\\'), chars(CharSet.fromString('"\\/bfnrt'))),
  unicodeEscape,
);

export function whitespace(options: JsonFormatOptions): Expr {
  if (options.whitespace === 'none') return empty;
  const indent = repeat(chars(CharSet.fromString(' \t')), 0, options.maxIndent ?? 20);
  return alt(empty, literal(' '), seq(literal('\n'), indent));
}

/** Rules for any JSON value; `json-value` is the entry. Recursive, so they stay calls. */
export function anyValueRules(options: JsonFormatOptions): Map<string, Rule> {
  const ws = whitespace(options);
  const member = seq(ref('json-string'), literal(':'), ws, ref('json-value'));
  const comma = seq(literal(','), ws);
  return new Map<string, Rule>([
    ['json-string', { expr: seq(literal('"'), star(stringChar), literal('"')), shared: true }],
    [
      'json-value',
      {
        expr: alt(
          ref('json-object'),
          ref('json-array'),
          ref('json-string'),
          anyNumber,
          literal('true'),
          literal('false'),
          literal('null'),
        ),
      },
    ],
    [
      'json-object',
      {
        expr: seq(literal('{'), ws, optional(seq(member, star(seq(comma, member)), ws)), literal('}')),
      },
    ],
    [
      'json-array',
      {
        expr: seq(
          literal('['),
          ws,
          optional(seq(ref('json-value'), star(seq(comma, ref('json-value'))), ws)),
          literal(']'),
        ),
      },
    ],
  ]);
}

/**
 * A character set as it appears inside a JSON string: its plain characters unescaped, and
 * '"', '\' and control characters by their escapes (for `pattern`s, which speak of the
 * decoded string).
 */
export function jsonEscapedChars(set: CharSet): Expr {
  const plain = set.intersect(plainStringChars);
  const escaped = set.subtract(plainStringChars);
  const options: Expr[] = plain.isEmpty ? [] : [chars(plain)];
  for (const [lo, hi] of escaped.pairs()) {
    for (let c = lo; c <= hi; c++)
      options.push(literal(JSON.stringify(String.fromCodePoint(c)).slice(1, -1)));
  }
  return alt(...options);
}

/** An expression over decoded characters rewritten to match their JSON string encoding. */
export function jsonEscapedExpr(expr: Expr): Expr {
  switch (expr.type) {
    case 'chars':
      return jsonEscapedChars(expr.set);
    case 'seq':
      return seq(...expr.items.map(jsonEscapedExpr));
    case 'alt':
      return alt(...expr.items.map(jsonEscapedExpr));
    case 'repeat':
      return repeat(jsonEscapedExpr(expr.item), expr.min, expr.max);
    case 'ref':
      return expr;
    case 'separated':
      return {
        type: 'separated',
        items: expr.items.map((item) => ({ expr: jsonEscapedExpr(item.expr), required: item.required })),
        separator: jsonEscapedExpr(expr.separator),
      };
  }
}
