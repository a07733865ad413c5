// Canonical keys for states whose token masks do not depend on their grammar: the states of a
// call-free rule other than the root (a free JSON string, a bounded string, a format). Two
// rules with the same automaton (of any grammars over one vocabulary) give their states the
// same keys, so the compiler classifies e.g. the inside of a JSON string once per vocabulary.
import type { Automaton } from './automaton.ts';

/** Interns rule signatures (long texts) as small numbers; one per vocabulary. */
export class SignatureRegistry {
  private readonly ids = new Map<string, number>();

  idOf(signature: string): number {
    let id = this.ids.get(signature);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(signature, id);
    }
    return id;
  }
}

export class StateKeys {
  private readonly automaton: Automaton;
  private readonly registry: SignatureRegistry;
  /** Per rule: its interned signature id, -1 when it has none, undefined until computed. */
  private readonly ruleIds: (number | undefined)[] = [];
  /** Per state: its index in its rule's canonical order. */
  private readonly canonical: Int32Array;

  constructor(automaton: Automaton, registry: SignatureRegistry) {
    this.automaton = automaton;
    this.registry = registry;
    this.canonical = new Int32Array(automaton.numStates).fill(-1);
  }

  /** The shared key of `state`, or null when its masks belong to this grammar alone. */
  keyOf(state: number): string | null {
    const rule = this.automaton.ruleOf(state);
    if (rule === 0) return null;
    let id = this.ruleIds[rule];
    if (id === undefined) {
      const signature = this.signature(rule);
      id = signature === null ? -1 : this.registry.idOf(signature);
      this.ruleIds[rule] = id;
    }
    return id < 0 ? null : `${id}:${this.canonical[state]}`;
  }

  /** The rule's automaton from its start in breadth-first order, or null when it calls. */
  private signature(rule: number): string | null {
    const { trans, numClasses, classOf, final, callOffsets, ruleOffsets } = this.automaton;
    const start = ruleOffsets[rule] as number;
    const order = [start];
    this.canonical[start] = 0;
    const rows: string[] = [];
    for (let k = 0; k < order.length; k++) {
      const s = order[k] as number;
      if (callOffsets[s] !== callOffsets[s + 1]) return null;
      let row = final[s] === 1 ? 'F' : 'N';
      let runStart = 0;
      let runTarget = -2;
      for (let b = 0; b <= 256; b++) {
        let target = -1;
        if (b < 256) {
          const t = trans[s * numClasses + (classOf[b] as number)] as number;
          if (t >= 0) {
            if (this.canonical[t] === -1) {
              this.canonical[t] = order.length;
              order.push(t);
            }
            target = this.canonical[t] as number;
          }
        }
        if (b === 256 || target !== runTarget) {
          if (runTarget >= 0) row += `${runStart}-${b - 1}>${runTarget};`;
          runStart = b;
          runTarget = target;
        }
      }
      rows.push(row);
    }
    return rows.join('|');
  }
}
