// A compiled grammar as plain data for another thread (structured clone: typed arrays and
// plain objects), and back. The compiler runs on a worker thread (compiler-thread.ts) so that a
// compile of seconds never holds the decode loop; the thread that decodes restores what it
// sends. Rest ids (state-masks.ts' TokenRests) are the compiling thread's: each transfer carries
// the rests interned since the one before, and the receiver's table mirrors the sender's.
import { Automaton } from './automaton.ts';
import { CompiledGrammar } from './compiled-grammar.ts';
import { StateMasks, TokenRests } from './state-masks.ts';
import { UncertainChecker } from './uncertain-check.ts';
import type { Vocabulary } from './vocabulary.ts';

/** The automaton's tables, as its constructor takes them. */
type AutomatonFields = ConstructorParameters<typeof Automaton>[0];

interface MasksFields {
  acceptedIds: Int32Array | null;
  acceptedBits: Uint32Array | null;
  numAccepted: number;
  uncertain: Int32Array;
  restStart: Int32Array;
  rests: Int32Array;
}

export interface GrammarTransfer {
  key: string;
  automaton: AutomatonFields;
  /** [numStates] index into `masks`, or -1 for a state that reads no bytes. */
  maskIndex: Int32Array;
  /** Each distinct StateMasks once (states of two equal rules share one). */
  masks: MasksFields[];
  /** The uncertain checker's verdicts per caller state (precompute's warm-up). */
  callerVerdicts: [number, Uint8Array][];
  /** Rests the sender interned since its previous transfer: ids restsStart, restsStart + 1, ... */
  restsStart: number;
  rests: Uint8Array[];
}

/** The sending side: one per compiler, so that each rest crosses once. */
export class GrammarSender {
  private readonly tokenRests: TokenRests;
  private numSentRests = 0;

  constructor(tokenRests: TokenRests) {
    this.tokenRests = tokenRests;
  }

  /**
   * `grammar` (precomputed: every state that reads bytes classified) as transferable data, and the
   * buffers to move rather than copy (postMessage's transfer list): copies made here, on the
   * compiling thread, so the receiving thread (the decode loop's) pays no copy.
   */
  encodeMovable(grammar: CompiledGrammar): { transfer: GrammarTransfer; buffers: ArrayBuffer[] } {
    const transfer = this.encode(grammar);
    const buffers: ArrayBuffer[] = [];
    const own = <T extends Int32Array | Uint32Array | Uint8Array>(array: T): T => {
      const copy = array.slice() as T;
      buffers.push(copy.buffer as ArrayBuffer);
      return copy;
    };
    for (const m of transfer.masks) {
      if (m.acceptedIds !== null) m.acceptedIds = own(m.acceptedIds);
      if (m.acceptedBits !== null) m.acceptedBits = own(m.acceptedBits);
      m.uncertain = own(m.uncertain);
      m.restStart = own(m.restStart);
      m.rests = own(m.rests);
    }
    transfer.automaton = {
      ...transfer.automaton,
      trans: own(transfer.automaton.trans),
      bytesToFinish: own(transfer.automaton.bytesToFinish),
    };
    transfer.callerVerdicts = transfer.callerVerdicts.map(([state, verdicts]) => [state, own(verdicts)]);
    return { transfer, buffers };
  }

  /** `grammar` (precomputed: every state that reads bytes classified) as transferable data. */
  encode(grammar: CompiledGrammar): GrammarTransfer {
    const a = grammar.automaton;
    const maskIndex = new Int32Array(a.numStates).fill(-1);
    const masks: MasksFields[] = [];
    const seen = new Map<StateMasks, number>();
    for (let s = 0; s < a.numStates; s++) {
      if (a.hasBytes[s] !== 1) continue;
      const m = grammar.masksOf(s);
      let index = seen.get(m);
      if (index === undefined) {
        index = masks.length;
        seen.set(m, index);
        masks.push({
          acceptedIds: m.acceptedIds,
          acceptedBits: m.acceptedBits,
          numAccepted: m.numAccepted,
          uncertain: m.uncertain,
          restStart: m.restStart,
          rests: m.rests,
        });
      }
      maskIndex[s] = index;
    }
    const restsStart = this.numSentRests;
    const rests = this.tokenRests.bytes.slice(restsStart);
    this.numSentRests = this.tokenRests.bytes.length;
    return {
      key: grammar.key,
      automaton: {
        ruleOffsets: a.ruleOffsets,
        classOf: a.classOf,
        numClasses: a.numClasses,
        trans: a.trans,
        final: a.final,
        callOffsets: a.callOffsets,
        callStarts: a.callStarts,
        callReturns: a.callReturns,
        bytesToFinish: a.bytesToFinish,
      },
      maskIndex,
      masks,
      callerVerdicts: grammar.uncertainChecker.callerVerdicts(),
      restsStart,
      rests,
    };
  }
}

/** The receiving side: one per sender, over the same vocabulary; transfers in the order sent. */
export class GrammarReceiver {
  readonly vocabulary: Vocabulary;
  private readonly tokenRests = new TokenRests();

  constructor(vocabulary: Vocabulary) {
    this.vocabulary = vocabulary;
  }

  decode(transfer: GrammarTransfer): CompiledGrammar {
    this.tokenRests.adopt(transfer.restsStart, transfer.rests);
    const masks = transfer.masks.map(
      (m) =>
        new StateMasks(
          m.acceptedBits !== null
            ? { bits: m.acceptedBits, count: m.numAccepted }
            : (m.acceptedIds ?? new Int32Array(0)),
          m.uncertain,
          m.restStart,
          m.rests,
          this.vocabulary.size,
        ),
    );
    const stateMasks = Array.from(transfer.maskIndex, (index) => (index < 0 ? null : (masks[index] ?? null)));
    const checker = new UncertainChecker(this.tokenRests);
    checker.adoptCallerVerdicts(transfer.callerVerdicts);
    return new CompiledGrammar(transfer.key, new Automaton(transfer.automaton), this.vocabulary, {
      type: 'restored',
      stateMasks,
      uncertainChecker: checker,
    });
  }
}
