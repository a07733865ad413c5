// The one grammar form every constraint kind compiles to: named rules over characters
// (sequence, alternation, bounded or unbounded repetition, references to rules). JSON Schema,
// regex, choice and EBNF all end here; automaton.ts turns it into byte-level automata.
import { CharSet } from './char-set.ts';

export type Expr =
  | { type: 'chars'; set: CharSet }
  | { type: 'seq'; items: readonly Expr[] }
  | { type: 'alt'; items: readonly Expr[] }
  | { type: 'repeat'; item: Expr; min: number; max: number | null }
  | { type: 'ref'; rule: string }
  | SeparatedList;

/**
 * The items in order, each present when required or optionally, the present ones separated by
 * `separator` (a JSON object's members). Built in linear size, where spelling it out with
 * alternatives would take quadratic size.
 */
export interface SeparatedList {
  type: 'separated';
  items: readonly { expr: Expr; required: boolean }[];
  separator: Expr;
}

export interface Rule {
  expr: Expr;
  /**
   * Keep this rule a call even where it could be inlined: its token masks are then computed once
   * for every place it is used (e.g. a free JSON string, used by many fields).
   */
  shared?: boolean;
}

export interface Grammar {
  rules: ReadonlyMap<string, Rule>;
  root: string;
}

export const empty: Expr = { type: 'seq', items: [] };
/** Matches nothing (an alternation of no choices). */
export const nothing: Expr = { type: 'alt', items: [] };

export function chars(set: CharSet): Expr {
  if (set.isEmpty) return nothing;
  return { type: 'chars', set };
}

export function literal(text: string): Expr {
  const items: Expr[] = [];
  for (const ch of text) items.push(chars(CharSet.of(ch.codePointAt(0) ?? 0)));
  return items.length === 1 ? (items[0] as Expr) : { type: 'seq', items };
}

/** True for an expression that matches nothing (as built by seq / alt / repeat). */
export function isNothing(expr: Expr): boolean {
  return expr.type === 'alt' && expr.items.length === 0;
}

export function seq(...items: Expr[]): Expr {
  const flat: Expr[] = [];
  for (const item of items) {
    if (isNothing(item)) return nothing;
    if (item.type === 'seq') flat.push(...item.items);
    else flat.push(item);
  }
  return flat.length === 1 ? (flat[0] as Expr) : { type: 'seq', items: flat };
}

export function alt(...items: Expr[]): Expr {
  const flat: Expr[] = [];
  for (const item of items) {
    if (item.type === 'alt') flat.push(...item.items);
    else if (item.type === 'chars' && item.set.isEmpty) continue;
    else flat.push(item);
  }
  return flat.length === 1 ? (flat[0] as Expr) : { type: 'alt', items: flat };
}

export function repeat(item: Expr, min: number, max: number | null): Expr {
  if (max === 1 && min === 1) return item;
  if (max === 0) return empty;
  if (isNothing(item) || (item.type === 'chars' && item.set.isEmpty)) return min === 0 ? empty : nothing;
  return { type: 'repeat', item, min, max };
}

export function optional(item: Expr): Expr {
  return repeat(item, 0, 1);
}

export function star(item: Expr): Expr {
  return repeat(item, 0, null);
}

export function plus(item: Expr): Expr {
  return repeat(item, 1, null);
}

export function ref(rule: string): Expr {
  return { type: 'ref', rule };
}

/** A rough size (character positions, repeats expanded) used to decide what to inline. */
export function exprSize(expr: Expr, ruleSize: (rule: string) => number): number {
  switch (expr.type) {
    case 'chars':
      return 1;
    case 'seq':
    case 'alt':
      return expr.items.reduce((sum, item) => sum + exprSize(item, ruleSize), 1);
    case 'repeat':
      return exprSize(expr.item, ruleSize) * Math.max(1, expr.max ?? expr.min + 1);
    case 'ref':
      return ruleSize(expr.rule);
    case 'separated':
      return expr.items.reduce(
        (sum, item) => sum + 2 * (exprSize(item.expr, ruleSize) + exprSize(expr.separator, ruleSize)),
        1,
      );
  }
}

export function separated(items: readonly { expr: Expr; required: boolean }[], separator: Expr): Expr {
  return { type: 'separated', items, separator };
}
