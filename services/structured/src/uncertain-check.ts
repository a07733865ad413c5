// Checks a state's uncertain tokens against the real stack. The tokens come in trie order, so
// consecutive ones share prefixes: the configurations after each prefix byte are kept per depth
// and only the bytes past the common prefix are read (`", "}` and `"]` share the pop at `"`).
import type { Automaton } from './automaton.ts';
import { ConfigList, close, type StackPool } from './stack.ts';

export class UncertainChecker {
  /** levels[i]: configurations after i bytes of the current token. */
  private readonly levels: ConfigList[];
  /** endFlags[i]: close() flags after i bytes. */
  private readonly endFlags: Int32Array;

  constructor(maxTokenBytes: number) {
    this.levels = Array.from({ length: maxTokenBytes + 1 }, () => new ConfigList());
    this.endFlags = new Int32Array(maxTokenBytes + 1);
  }

  /**
   * Of `tokens` (byte order), those readable from (state, parent) with the real stack in `pool`;
   * `skip(id)` drops tokens already known to be allowed.
   */
  check(
    automaton: Automaton,
    pool: StackPool,
    state: number,
    parent: number,
    tokens: Int32Array,
    tokenBytes: readonly (Uint8Array | null)[],
    skip: (id: number) => boolean,
    passed: number[],
  ): void {
    const { levels, endFlags } = this;
    const first = levels[0] as ConfigList;
    first.clear();
    first.add(state, parent);
    endFlags[0] = 0;
    let previous: Uint8Array = new Uint8Array(0);
    let deadDepth = Number.MAX_SAFE_INTEGER; // first empty level for `previous`
    for (const id of tokens) {
      if (skip(id)) continue;
      const bytes = tokenBytes[id] as Uint8Array;
      let common = 0;
      const limit = Math.min(previous.length, bytes.length);
      while (common < limit && previous[common] === bytes[common]) common++;
      if (deadDepth <= common) {
        if (bytes.length === deadDepth && endFlags[deadDepth] !== 0) passed.push(id);
        continue; // a shared prefix already failed
      }
      previous = bytes;
      deadDepth = Number.MAX_SAFE_INTEGER;
      for (let i = common; i < bytes.length; i++) {
        const from = levels[i] as ConfigList;
        const to = levels[i + 1] as ConfigList;
        to.clear();
        let flags = 0;
        const d = from.data;
        for (let k = 0; k < from.length; k += 2) {
          const t = automaton.step(d[k] as number, bytes[i] as number);
          if (t >= 0) flags |= close(automaton, pool, t, d[k + 1] as number, to);
        }
        endFlags[i + 1] = flags;
        if (to.length === 0) {
          deadDepth = i + 1;
          break;
        }
      }
      const n = bytes.length;
      if (deadDepth > n || (deadDepth === n && endFlags[n] !== 0)) passed.push(id);
    }
  }
}
