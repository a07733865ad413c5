// Thompson construction of one rule: an NFA over byte ranges, with epsilon edges and call
// edges to the rules that stay calls (recursive or shared ones); every other rule reference is
// inlined. Characters become UTF-8 byte chains here, cut down to the vocabulary's alphabet.
import type { CharSet } from './char-set.ts';
import type { Expr, Rule, SeparatedList } from './grammar.ts';
import { utf8Sequences } from './utf8.ts';

export interface Nfa {
  /** Per state: epsilon targets. */
  eps: number[][];
  /** Per state: flat [lo, hi, target, ...] byte-range edges. */
  bytes: number[][];
  /** Per state: flat [ruleIndex, target, ...] call edges. */
  calls: number[][];
  start: number;
  accept: number;
}

export interface NfaContext {
  rules: ReadonlyMap<string, Rule>;
  /** Rules that stay calls -> their index; references to others are inlined. */
  callIndex: ReadonlyMap<string, number>;
  alphabet: CharSet;
  maxStates: number;
  /** Thrown when the NFA would exceed maxStates. */
  onTooLarge: () => never;
}

export function buildNfa(expr: Expr, context: NfaContext): Nfa {
  const builder = new NfaBuilder(context);
  const start = builder.newState();
  const accept = builder.newState();
  builder.build(expr, start, accept);
  return { eps: builder.eps, bytes: builder.bytes, calls: builder.calls, start, accept };
}

class NfaBuilder {
  readonly eps: number[][] = [];
  readonly bytes: number[][] = [];
  readonly calls: number[][] = [];
  private readonly context: NfaContext;
  private readonly sequenceCache = new Map<string, ReturnType<typeof utf8Sequences>>();

  constructor(context: NfaContext) {
    this.context = context;
  }

  newState(): number {
    if (this.eps.length >= this.context.maxStates) this.context.onTooLarge();
    this.eps.push([]);
    this.bytes.push([]);
    this.calls.push([]);
    return this.eps.length - 1;
  }

  build(expr: Expr, from: number, to: number): void {
    switch (expr.type) {
      case 'chars':
        this.buildChars(expr.set, from, to);
        return;
      case 'seq': {
        let current = from;
        expr.items.forEach((item, i) => {
          const next = i === expr.items.length - 1 ? to : this.newState();
          this.build(item, current, next);
          current = next;
        });
        if (expr.items.length === 0) this.epsilon(from, to);
        return;
      }
      case 'alt':
        for (const item of expr.items) {
          const start = this.newState();
          this.epsilon(from, start);
          this.build(item, start, to);
        }
        return;
      case 'repeat':
        this.buildRepeat(expr.item, expr.min, expr.max, from, to);
        return;
      case 'separated':
        this.buildSeparated(expr, from, to);
        return;
      case 'ref': {
        const index = this.context.callIndex.get(expr.rule);
        if (index !== undefined) {
          (this.calls[from] as number[]).push(index, to);
          return;
        }
        const rule = this.context.rules.get(expr.rule);
        if (rule === undefined) throw new RangeError(`rule ${expr.rule} is not defined`);
        this.build(rule.expr, from, to);
        return;
      }
    }
  }

  private epsilon(from: number, to: number): void {
    (this.eps[from] as number[]).push(to);
  }

  /**
   * Two states per position: nothing emitted yet (E_i) or something (S_i). An item goes from
   * E_i to S_i+1 as is, from S_i to S_i+1 after the separator; an optional one may be skipped.
   */
  private buildSeparated(expr: SeparatedList, from: number, to: number): void {
    let none = from; // E_i
    let some = this.newState(); // S_i (unreachable at i = 0)
    expr.items.forEach((item, i) => {
      const nextNone = item.required ? -1 : this.newState();
      const nextSome = this.newState();
      if (none >= 0) {
        this.build(item.expr, none, nextSome);
        if (!item.required) this.epsilon(none, nextNone);
      }
      if (i > 0) {
        const afterSeparator = this.newState();
        this.build(expr.separator, some, afterSeparator);
        this.build(item.expr, afterSeparator, nextSome);
        if (!item.required) this.epsilon(some, nextSome);
      }
      none = nextNone;
      some = nextSome;
    });
    if (none >= 0) this.epsilon(none, to);
    this.epsilon(some, to);
  }

  private buildRepeat(item: Expr, min: number, max: number | null, from: number, to: number): void {
    let current = from;
    for (let i = 0; i < min; i++) {
      const next = this.newState();
      this.build(item, current, next);
      current = next;
    }
    if (max === null) {
      const loop = this.newState();
      const back = this.newState();
      this.epsilon(current, loop);
      this.build(item, loop, back);
      this.epsilon(back, loop);
      this.epsilon(loop, to);
      return;
    }
    for (let i = min; i < max; i++) {
      this.epsilon(current, to);
      const next = this.newState();
      this.build(item, current, next);
      current = next;
    }
    this.epsilon(current, to);
  }

  private buildChars(set: CharSet, from: number, to: number): void {
    const allowed = set.intersect(this.context.alphabet);
    const key = allowed.ranges.join(',');
    let sequences = this.sequenceCache.get(key);
    if (sequences === undefined) {
      sequences = allowed.pairs().flatMap(([lo, hi]) => utf8Sequences(lo, hi));
      this.sequenceCache.set(key, sequences);
    }
    // Sequences sharing a first byte range share the state after it (fewer states per class).
    const afterFirst = new Map<string, number>();
    for (const sequence of sequences) {
      let current = from;
      sequence.forEach(([lo, hi], i) => {
        let next: number;
        if (i === sequence.length - 1) next = to;
        else if (i === 0) {
          const firstKey = `${lo}-${hi}-${sequence.length}`;
          const known = afterFirst.get(firstKey);
          if (known !== undefined) {
            current = known;
            return;
          }
          next = this.newState();
          afterFirst.set(firstKey, next);
        } else next = this.newState();
        (this.bytes[current] as number[]).push(lo, hi, next);
        current = next;
      });
    }
  }
}
