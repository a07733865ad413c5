// Which rules of a grammar stay calls of the pushdown automaton: the root, rules on a
// reference cycle (recursion), rules marked shared, and rules too big to copy at every use.
// Every other reference is inlined. Also rejects references to undefined rules.
import { InvalidGrammarError } from './errors.ts';
import { type Expr, exprSize, type Grammar } from './grammar.ts';

const inlineBudget = 20_000;

/** Root first; then rules that are recursive, marked shared, or too big to copy everywhere. */
export function chooseCallRules(grammar: Grammar, param: string): string[] {
  const names = [...grammar.rules.keys()];
  const refs = new Map<string, Map<string, number>>();
  for (const name of names) {
    const counts = new Map<string, number>();
    collectRefs((grammar.rules.get(name) as { expr: Expr }).expr, 1, counts);
    for (const target of counts.keys()) {
      if (!grammar.rules.has(target)) throw new InvalidGrammarError(`rule "${target}" is not defined`, param);
    }
    refs.set(name, counts);
  }
  if (!grammar.rules.has(grammar.root))
    throw new InvalidGrammarError(`rule "${grammar.root}" is not defined`, param);
  const recursive = recursiveRules(names, refs);
  const calls = new Set<string>([grammar.root]);
  for (const name of names)
    if (recursive.has(name) || grammar.rules.get(name)?.shared === true) calls.add(name);
  // Sizes with every non-call reference inlined; big rules used often become calls too.
  const sizes = new Map<string, number>();
  const sizeOf = (name: string): number => {
    if (calls.has(name)) return 1;
    const known = sizes.get(name);
    if (known !== undefined) return known;
    sizes.set(name, 1);
    const size = exprSize((grammar.rules.get(name) as { expr: Expr }).expr, sizeOf);
    sizes.set(name, size);
    return size;
  };
  const uses = new Map<string, number>();
  for (const counts of refs.values())
    for (const [target, n] of counts) uses.set(target, (uses.get(target) ?? 0) + n);
  for (const name of names) {
    const size = sizeOf(name);
    if (!calls.has(name) && size > 16 && size * (uses.get(name) ?? 0) > inlineBudget) {
      calls.add(name);
      sizes.clear();
    }
  }
  return [grammar.root, ...names.filter((name) => name !== grammar.root && calls.has(name))];
}

function collectRefs(expr: Expr, multiplicity: number, counts: Map<string, number>): void {
  switch (expr.type) {
    case 'chars':
      return;
    case 'seq':
    case 'alt':
      for (const item of expr.items) collectRefs(item, multiplicity, counts);
      return;
    case 'separated':
      for (const item of expr.items) collectRefs(item.expr, multiplicity * 2, counts);
      collectRefs(expr.separator, multiplicity * 2 * expr.items.length, counts);
      return;
    case 'repeat':
      collectRefs(expr.item, multiplicity * Math.max(1, expr.max ?? expr.min + 1), counts);
      return;
    case 'ref':
      counts.set(expr.rule, (counts.get(expr.rule) ?? 0) + multiplicity);
  }
}

/** Rules on a reference cycle (Tarjan's strongly connected components). */
function recursiveRules(
  names: readonly string[],
  refs: ReadonlyMap<string, Map<string, number>>,
): Set<string> {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out = new Set<string>();
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of refs.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || refs.get(v)?.has(v) === true) for (const name of component) out.add(name);
    }
  };
  for (const name of names) if (!index.has(name)) visit(name);
  return out;
}
