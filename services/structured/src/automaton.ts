// A grammar compiled to one flat pushdown automaton: every rule that stays a call (the root,
// recursive rules, shared rules, rules too big to copy) is a minimal DFA over byte classes,
// and all of them live in shared typed arrays indexed by a global state id. Non-recursive
// rules are inlined, so most JSON schemas become a single DFA and need no stack at all.
import { finishDistances, runs, tailReturn } from './automaton-tables.ts';
import { chooseCallRules } from './call-rules.ts';
import type { CharSet } from './char-set.ts';
import {
  type ByteClasses,
  byteClassesOf,
  canFinish,
  determinize,
  minimize,
  type RuleDfa,
  trim,
} from './dfa.ts';
import { ConstraintTooLargeError, InvalidGrammarError, UnsatisfiableConstraintError } from './errors.ts';
import type { Expr, Grammar } from './grammar.ts';
import { buildNfa, type Nfa } from './nfa.ts';

export interface AutomatonOptions {
  /** The request field the grammar came from (errors name it). */
  param: string;
  /** Upper bound on NFA and DFA states (each). Default 200,000. */
  maxStates?: number;
}

export { tailReturn };

export class Automaton {
  readonly numStates: number;
  readonly numClasses: number;
  /** [256] byte -> byte class */
  readonly classOf: Uint8Array;
  /** [numStates * numClasses] next state or -1 */
  readonly trans: Int32Array;
  /** [numStates] 1 where the state's rule may end */
  readonly final: Uint8Array;
  /** [numStates] 1 where the state reads at least one byte */
  readonly hasBytes: Uint8Array;
  /** [numStates] 1 where the state only reads bytes: not final, no calls (no stack work) */
  readonly bytesOnly: Uint8Array;
  /**
   * Runs, for skipping whole trie subtrees: [numStates * 8] the bytes (256 bits) that lead from
   * each state to its most common next state, and [numStates] how many such bytes in a row
   * stay on that chain (a self-loop: unbounded; a string's length counter: what is left).
   */
  readonly runBytes: Uint32Array;
  readonly runLength: Int32Array;
  /** [numStates + 1] offsets into callStarts / callReturns */
  readonly callOffsets: Int32Array;
  /** callee start state per call edge */
  readonly callStarts: Int32Array;
  /** return state per call edge, or tailReturn */
  readonly callReturns: Int32Array;
  /** [numStates] fewest bytes that finish the state's rule (calls included) */
  readonly bytesToFinish: Int32Array;
  readonly rootStart: number;
  /** [numRules + 1] first state of each call rule (rule 0 is the root) */
  readonly ruleOffsets: Int32Array;
  /** [numRules] 1 where some call edge enters the rule (0: only the root, never called) */
  readonly ruleCalled: Uint8Array;

  constructor(fields: {
    ruleOffsets: Int32Array;
    classOf: Uint8Array;
    numClasses: number;
    trans: Int32Array;
    final: Uint8Array;
    callOffsets: Int32Array;
    callStarts: Int32Array;
    callReturns: Int32Array;
    bytesToFinish: Int32Array;
  }) {
    this.ruleOffsets = fields.ruleOffsets;
    this.classOf = fields.classOf;
    this.numClasses = fields.numClasses;
    this.trans = fields.trans;
    this.final = fields.final;
    this.callOffsets = fields.callOffsets;
    this.callStarts = fields.callStarts;
    this.callReturns = fields.callReturns;
    this.bytesToFinish = fields.bytesToFinish;
    this.numStates = fields.final.length;
    this.hasBytes = new Uint8Array(this.numStates);
    for (let s = 0; s < this.numStates; s++) {
      for (let c = 0; c < this.numClasses; c++) {
        if ((this.trans[s * this.numClasses + c] as number) >= 0) {
          this.hasBytes[s] = 1;
          break;
        }
      }
    }
    this.bytesOnly = new Uint8Array(this.numStates);
    for (let s = 0; s < this.numStates; s++) {
      const noCalls = this.callOffsets[s] === this.callOffsets[s + 1];
      if (this.hasBytes[s] === 1 && this.final[s] === 0 && noCalls) this.bytesOnly[s] = 1;
    }
    [this.runBytes, this.runLength] = runs(this.trans, this.numClasses, this.classOf, this.numStates);
    this.rootStart = 0;
    this.ruleCalled = new Uint8Array(this.ruleOffsets.length - 1);
    for (const start of this.callStarts) this.ruleCalled[this.ruleOf(start)] = 1;
  }

  /** The call rule `state` belongs to (0: the root). */
  ruleOf(state: number): number {
    let lo = 0;
    let hi = this.ruleOffsets.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.ruleOffsets[mid] as number) <= state) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Number of states of call rule `rule`. */
  ruleSize(rule: number): number {
    return (this.ruleOffsets[rule + 1] as number) - (this.ruleOffsets[rule] as number);
  }

  /** Next state after `byte`, or -1. */
  step(state: number, byte: number): number {
    return this.trans[state * this.numClasses + (this.classOf[byte] as number)] as number;
  }
}

const defaultMaxStates = 200_000;

export function compileAutomaton(grammar: Grammar, alphabet: CharSet, options: AutomatonOptions): Automaton {
  const { param } = options;
  const maxStates = options.maxStates ?? defaultMaxStates;
  const tooLarge = (): never => {
    throw new ConstraintTooLargeError(`the constraint needs more than ${maxStates} automaton states`, param);
  };
  const callRules = chooseCallRules(grammar, param);
  const callIndex = new Map(callRules.map((name, i) => [name, i]));
  const nfas: Nfa[] = callRules.map((name) =>
    buildNfa((grammar.rules.get(name) as { expr: Expr }).expr, {
      rules: grammar.rules,
      callIndex,
      alphabet,
      maxStates,
      onTooLarge: tooLarge,
    }),
  );
  const classes = byteClassesOf(nfas);
  const raw = nfas.map((nfa) => determinize(nfa, classes, maxStates, tooLarge));
  const dfas = trimAll(raw, classes.numClasses);
  if (dfas[0] === null) {
    throw new UnsatisfiableConstraintError(
      'no output satisfies the constraint (with the characters this model can produce)',
      param,
    );
  }
  const minimal = dfas.map((dfa) => (dfa === null ? null : minimize(dfa, classes.numClasses)));
  rejectLeftRecursion(minimal, callRules, param);
  return flatten(minimal, classes, maxStates, tooLarge);
}

/**
 * Trims every rule, calls counting only into rules that can finish: the least fixpoint, found
 * by growing the set of such rules from none (a rule that only calls itself never finishes).
 */
function trimAll(dfas: readonly RuleDfa[], numClasses: number): (RuleDfa | null)[] {
  const productive = dfas.map(() => false);
  for (let changed = true; changed; ) {
    changed = false;
    dfas.forEach((dfa, r) => {
      if (!productive[r] && canFinish(dfa, numClasses, (callee) => productive[callee] === true)) {
        productive[r] = true;
        changed = true;
      }
    });
  }
  const finishing = productive;
  return dfas.map((dfa, i) =>
    finishing[i] === true ? trim(dfa, numClasses, (r) => finishing[r] === true) : null,
  );
}

function rejectLeftRecursion(
  dfas: readonly (RuleDfa | null)[],
  names: readonly string[],
  param: string,
): void {
  const nullable = dfas.map(() => false);
  for (let changed = true; changed; ) {
    changed = false;
    dfas.forEach((dfa, r) => {
      if (dfa !== null && !nullable[r] && reachesWithoutBytes(dfa, nullable).final) {
        nullable[r] = true;
        changed = true;
      }
    });
  }
  const leftCalls = dfas.map((dfa) =>
    dfa === null ? new Set<number>() : reachesWithoutBytes(dfa, nullable).called,
  );
  const state = dfas.map(() => 0); // 0 unvisited, 1 on path, 2 done
  const visit = (r: number): void => {
    state[r] = 1;
    for (const callee of leftCalls[r] as Set<number>) {
      if (state[callee] === 1) {
        throw new InvalidGrammarError(
          `rule "${names[callee]}" is left-recursive (rewrite it with repetition)`,
          param,
        );
      }
      if (state[callee] === 0) visit(callee);
    }
    state[r] = 2;
  };
  dfas.forEach((_, r) => {
    if (state[r] === 0) visit(r);
  });
}

/** From the start, through calls to nullable rules only: can it finish, and which rules does it call? */
function reachesWithoutBytes(
  dfa: RuleDfa,
  nullable: readonly boolean[],
): { final: boolean; called: Set<number> } {
  const seen = new Set<number>([0]);
  const stack = [0];
  const called = new Set<number>();
  let final = false;
  while (stack.length > 0) {
    const s = stack.pop() as number;
    if (dfa.final[s] === 1) final = true;
    const edges = dfa.calls[s] as number[];
    for (let i = 0; i < edges.length; i += 2) {
      const callee = edges[i] as number;
      called.add(callee);
      const target = edges[i + 1] as number;
      if (nullable[callee] === true && !seen.has(target)) {
        seen.add(target);
        stack.push(target);
      }
    }
  }
  return { final, called };
}

function flatten(
  dfas: readonly (RuleDfa | null)[],
  classes: ByteClasses,
  maxStates: number,
  tooLarge: () => never,
): Automaton {
  const { numClasses } = classes;
  const offsets: number[] = [];
  let total = 0;
  for (const dfa of dfas) {
    offsets.push(total);
    total += dfa?.numStates ?? 0;
  }
  if (total > maxStates) tooLarge();
  const trans = new Int32Array(total * numClasses).fill(-1);
  const final = new Uint8Array(total);
  const callLists: number[][] = [];
  dfas.forEach((dfa, r) => {
    if (dfa === null) return;
    const base = offsets[r] as number;
    for (let s = 0; s < dfa.numStates; s++) {
      final[base + s] = dfa.final[s] as number;
      for (let c = 0; c < numClasses; c++) {
        const t = dfa.trans[s * numClasses + c] as number;
        if (t >= 0) trans[(base + s) * numClasses + c] = base + t;
      }
      const edges = dfa.calls[s] as number[];
      const list: number[] = [];
      for (let i = 0; i < edges.length; i += 2)
        list.push(offsets[edges[i] as number] as number, base + (edges[i + 1] as number));
      callLists[base + s] = list;
    }
  });
  const callOffsets = new Int32Array(total + 1);
  const starts: number[] = [];
  const returns: number[] = [];
  const isSink = (s: number): boolean => {
    if (final[s] !== 1 || (callLists[s] as number[]).length > 0) return false;
    for (let c = 0; c < numClasses; c++) if ((trans[s * numClasses + c] as number) >= 0) return false;
    return true;
  };
  for (let s = 0; s < total; s++) {
    callOffsets[s] = starts.length;
    const list = callLists[s] as number[];
    for (let i = 0; i < list.length; i += 2) {
      const ret = list[i + 1] as number;
      starts.push(list[i] as number);
      returns.push(isSink(ret) ? tailReturn : ret);
    }
  }
  callOffsets[total] = starts.length;
  const callStarts = Int32Array.from(starts);
  const callReturns = Int32Array.from(returns);
  const bytesToFinish = finishDistances(trans, final, numClasses, callOffsets, callStarts, callReturns);
  return new Automaton({
    ruleOffsets: Int32Array.from([...offsets, total]),
    classOf: classes.classOf,
    numClasses,
    trans,
    final,
    callOffsets,
    callStarts,
    callReturns,
    bytesToFinish,
  });
}
