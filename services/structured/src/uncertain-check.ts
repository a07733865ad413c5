// Checks a state's uncertain tokens against the real caller. Each such token is allowed if the
// caller reads one of its rests (what follows a place where the state's rule can finish inside
// the token). A rest is first judged against the caller's own state alone (readable, not, or
// "depends": it finishes the caller's rule too), cached per caller state and rest id, so the
// work is shared by every stack with that caller; only "depends" rests are read with the whole
// stack, cached per stack. Rests like `,` `}` `]` recur across thousands of tokens.
import type { Automaton } from './automaton.ts';
import {
  advance,
  ConfigList,
  close,
  contextNode,
  reachedContextEnd,
  rootNode,
  type StackPool,
} from './stack.ts';
import type { StateMasks, TokenRests } from './state-masks.ts';

const stacksKept = 512;
const unknown = 0;
const readable = 1;
const unreadable = 2;
const depends = 3;

export class UncertainChecker {
  private readonly tokenRests: TokenRests;
  /** Caller state -> per rest id: unknown / readable / unreadable / depends. */
  private readonly byCallerState = new Map<number, Uint8Array>();
  /** Caller stack (described) -> per rest id: unknown / readable / unreadable. LRU. */
  private readonly byStack = new Map<string, Uint8Array>();
  private readonly current = new ConfigList();
  private readonly next = new ConfigList();
  private readonly out = new ConfigList();

  constructor(tokenRests: TokenRests) {
    this.tokenRests = tokenRests;
  }

  /** The verdicts per caller state so far (precompute's warm-up), to restore on another thread. */
  callerVerdicts(): [number, Uint8Array][] {
    return [...this.byCallerState];
  }

  /** Takes verdicts another thread's checker reached (callerVerdicts()), over the same rest ids. */
  adoptCallerVerdicts(verdicts: readonly [number, Uint8Array][]): void {
    for (const [state, results] of verdicts) this.byCallerState.set(state, results);
  }

  /** Appends to `passed` the uncertain tokens of `masks` allowed under `parent`; skips `skip(id)`. */
  check(
    automaton: Automaton,
    pool: StackPool,
    parent: number,
    masks: StateMasks,
    skip: (id: number) => boolean,
    passed: number[],
  ): void {
    // Finishing the root rule ends the output: nothing can follow inside the same token.
    if (parent === rootNode) return;
    const callerState = pool.state(parent);
    let local =
      this.byCallerState.get(callerState) ?? this.grown(this.byCallerState, callerState, new Uint8Array(0));
    let full: Uint8Array | null = null;
    const { uncertain, restStart, rests } = masks;
    for (let i = 0; i < uncertain.length; i++) {
      const id = uncertain[i] as number;
      if (skip(id)) continue;
      for (let j = restStart[i] as number; j < (restStart[i + 1] as number); j++) {
        const rest = rests[j] as number;
        if (rest >= local.length) local = this.grown(this.byCallerState, callerState, local);
        let verdict = local[rest] as number;
        if (verdict === unknown) {
          verdict = this.readLocally(automaton, pool, callerState, this.tokenRests.bytes[rest] as Uint8Array);
          local[rest] = verdict;
        }
        if (verdict === depends) {
          full ??= this.stackResults(pool.describe(parent));
          if (rest >= full.length) full = this.grown(this.byStack, pool.describe(parent), full);
          verdict = full[rest] as number;
          if (verdict === unknown) {
            this.current.clear();
            close(automaton, pool, callerState, pool.parent(parent), this.current);
            const bytes = this.tokenRests.bytes[rest] as Uint8Array;
            verdict =
              advance(automaton, pool, this.current, bytes, this.out, this.next) >= 0 ? readable : unreadable;
            full[rest] = verdict;
          }
        }
        if (verdict === readable) {
          passed.push(id);
          break;
        }
      }
    }
  }

  /** Judges every rest of `masks`' uncertain tokens against `callerState` alone (a warm-up). */
  judgeAgainst(automaton: Automaton, pool: StackPool, callerState: number, masks: StateMasks): void {
    let local =
      this.byCallerState.get(callerState) ?? this.grown(this.byCallerState, callerState, new Uint8Array(0));
    for (const rest of masks.rests) {
      if (rest >= local.length) local = this.grown(this.byCallerState, callerState, local);
      if (local[rest] === unknown) {
        local[rest] = this.readLocally(
          automaton,
          pool,
          callerState,
          this.tokenRests.bytes[rest] as Uint8Array,
        );
      }
    }
  }

  /** Reads `bytes` from `state` with nothing known below it. */
  private readLocally(automaton: Automaton, pool: StackPool, state: number, bytes: Uint8Array): number {
    let current = this.current;
    let next = this.next;
    current.clear();
    let endedBefore = (close(automaton, pool, state, contextNode, current) & reachedContextEnd) !== 0;
    for (let i = 0; i < bytes.length; i++) {
      next.clear();
      let flags = 0;
      const d = current.data;
      for (let k = 0; k < current.length; k += 2) {
        const t = automaton.step(d[k] as number, bytes[i] as number);
        if (t >= 0) flags |= close(automaton, pool, t, d[k + 1] as number, next);
      }
      const last = i === bytes.length - 1;
      if (next.length === 0) {
        if (last && flags !== 0) return readable;
        return endedBefore ? depends : unreadable;
      }
      if ((flags & reachedContextEnd) !== 0) endedBefore = true;
      [current, next] = [next, current];
    }
    return readable;
  }

  private stackResults(key: string): Uint8Array {
    const results = this.byStack.get(key);
    if (results !== undefined) {
      this.byStack.delete(key);
      this.byStack.set(key, results);
      return results;
    }
    if (this.byStack.size >= stacksKept) {
      const oldest = this.byStack.keys().next();
      if (oldest.done !== true) this.byStack.delete(oldest.value);
    }
    return this.grown(this.byStack, key, new Uint8Array(0));
  }

  /** A copy of `results` long enough for every rest id so far, stored under `key`. */
  private grown<K>(map: Map<K, Uint8Array>, key: K, results: Uint8Array): Uint8Array {
    const bigger = new Uint8Array(Math.max(this.tokenRests.bytes.length, results.length * 2, 64));
    bigger.set(results);
    map.set(key, bigger);
    return bigger;
  }
}
