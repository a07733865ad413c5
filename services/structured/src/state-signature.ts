// A canonical text for what a state can read, when that is a small call-free automaton: two
// states (of any grammars over the same vocabulary) with the same signature have the same token
// masks, so the compiler classifies e.g. the inside of a free JSON string once per vocabulary
// rather than once per schema.
import type { Automaton } from './automaton.ts';

/**
 * The signature of `start`, or null when it is in the root rule (specific to its grammar), in
 * a rule of more than `limit` states, or reaches a call.
 */
export function stateSignature(automaton: Automaton, start: number, limit = 64): string | null {
  const rule = automaton.ruleOf(start);
  if (rule === 0 || automaton.ruleSize(rule) > limit) return null;
  const { trans, numClasses, classOf, final, callOffsets } = automaton;
  const index = new Map<number, number>([[start, 0]]);
  const order = [start];
  const parts: string[] = [];
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
          let i = index.get(t);
          if (i === undefined) {
            if (order.length >= limit) return null;
            i = order.length;
            index.set(t, i);
            order.push(t);
          }
          target = i;
        }
      }
      if (b === 256 || target !== runTarget) {
        if (runTarget >= 0) row += `${runStart}-${b - 1}>${runTarget};`;
        runStart = b;
        runTarget = target;
      }
    }
    parts.push(row);
  }
  return parts.join('|');
}
