// Compiling off the caller's thread. compile() can take seconds for a large schema over a 128k
// vocabulary (classifying every automaton state against the token trie); on the thread that
// runs the decode loop that would stall every sequence in the batch. A CompilerThread owns a
// worker thread with its own Vocabulary and GrammarCompiler (and so its own caches); compile()
// resolves with the grammar restored here (transfer.ts), ready for matchers on this thread, and
// check() validates a spec there (what a gateway needs for its 400s). Refusals arrive as the
// same error classes, with their `param`.
import { Worker } from 'node:worker_threads';
import { type ErrorCode, type ErrorReason, errorFromWire, isErrorCode, isErrorReason } from '@tandem/common';
import type { CompiledGrammar } from './compiled-grammar.ts';
import { type CompilerOptions, type ConstraintSpec, canonicalJson } from './compiler.ts';
import type { SerializedError, ThreadData, ThreadRequest } from './compiler-thread-entry.ts';
import {
  ConstraintTooLargeError,
  InvalidChoiceError,
  InvalidGrammarError,
  InvalidRegexError,
  InvalidSchemaError,
  UnsatisfiableConstraintError,
  UnsupportedSchemaError,
  VocabularyError,
} from './errors.ts';
import { GrammarReceiver, type GrammarTransfer } from './transfer.ts';
import { Vocabulary, type VocabularyOptions, type VocabularyTransfer } from './vocabulary.ts';

export interface CompilerThreadOptions {
  vocabulary?: VocabularyOptions;
  /** The thread's GrammarCompiler options (its cache holds grammars it already compiled). */
  compiler?: CompilerOptions;
  /**
   * Load the vocabulary here too and restore compiled grammars on this thread (compile());
   * false: check() only (a gateway validates, a worker decodes). Default true.
   */
  restore?: boolean;
  /** Compiled grammars kept on this thread by spec (least recently used dropped). Default 256. */
  cacheSize?: number;
}

type ThreadMessage =
  | { type: 'ready'; vocabulary: VocabularyTransfer | null }
  | { type: 'failed'; error: SerializedError }
  | { type: 'result'; id: number; transfer: GrammarTransfer | null }
  | { type: 'error'; id: number; error: SerializedError };

interface Pending {
  resolve(transfer: GrammarTransfer | null): void;
  reject(error: unknown): void;
}

const entryUrl = new URL('./compiler-thread-entry.ts', import.meta.url);

export class CompilerThread {
  /** This thread's copy of the vocabulary (null with restore: false). */
  readonly vocabulary: Vocabulary | null;
  private readonly worker: Worker;
  private readonly receiver: GrammarReceiver | null;
  private readonly pending = new Map<number, Pending>();
  private readonly compiled = new Map<string, Promise<CompiledGrammar>>();
  private readonly cacheSize: number;
  private nextId = 0;
  private closed = false;

  private constructor(worker: Worker, vocabulary: Vocabulary | null, cacheSize: number) {
    this.worker = worker;
    this.vocabulary = vocabulary;
    this.receiver = vocabulary === null ? null : new GrammarReceiver(vocabulary);
    this.cacheSize = cacheSize;
    worker.on('message', (message: ThreadMessage) => this.onMessage(message));
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', () => this.failAll(new VocabularyError('the grammar compiler thread exited')));
    worker.unref(); // referenced only while requests are pending
  }

  /** Starts the thread on a checkpoint folder (its tokenizer.json and configs). */
  static async start(modelDir: string, options: CompilerThreadOptions = {}): Promise<CompilerThread> {
    const data: ThreadData = {
      modelDir,
      vocabulary: options.vocabulary ?? {},
      compiler: options.compiler ?? {},
      sendVocabulary: options.restore !== false,
    };
    const worker = new Worker(entryUrl, { workerData: data });
    try {
      const transfer = await new Promise<VocabularyTransfer | null>((resolve, reject) => {
        worker.once('message', (message: ThreadMessage) => {
          if (message.type === 'ready') resolve(message.vocabulary);
          else if (message.type === 'failed') reject(rebuildError(message.error));
        });
        worker.once('error', reject);
      });
      const vocabulary = transfer === null ? null : Vocabulary.fromTransfer(transfer);
      return new CompilerThread(worker, vocabulary, options.cacheSize ?? 256);
    } catch (error) {
      await worker.terminate();
      throw error;
    }
  }

  /** Resolves when `spec` would compile; rejects with the error compile() would raise. */
  async check(spec: ConstraintSpec): Promise<void> {
    await this.request('check', spec);
  }

  /** The compiled constraint, usable on this thread (cached by the spec's canonical JSON). */
  compile(spec: ConstraintSpec): Promise<CompiledGrammar> {
    const receiver = this.receiver;
    if (receiver === null) {
      return Promise.reject(new VocabularyError('this CompilerThread was started with restore: false'));
    }
    const key = canonicalJson(spec);
    const cached = key === null ? undefined : this.compiled.get(key);
    if (key !== null && cached !== undefined) {
      this.compiled.delete(key);
      this.compiled.set(key, cached);
      return cached;
    }
    // Decoded in the order the thread answers: rest ids arrive in the order it interned them.
    const grammar = this.request('compile', spec).then((transfer) =>
      receiver.decode(transfer as GrammarTransfer),
    );
    if (key !== null) {
      this.compiled.set(key, grammar);
      grammar.catch(() => {
        if (this.compiled.get(key) === grammar) this.compiled.delete(key);
      });
      if (this.compiled.size > this.cacheSize) {
        const oldest = this.compiled.keys().next();
        if (oldest.done !== true) this.compiled.delete(oldest.value);
      }
    }
    return grammar;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.worker.terminate();
  }

  private request(op: ThreadRequest['op'], spec: ConstraintSpec): Promise<GrammarTransfer | null> {
    if (this.closed) return Promise.reject(new VocabularyError('the grammar compiler thread is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ id, op, spec } satisfies ThreadRequest);
    });
  }

  private onMessage(message: ThreadMessage): void {
    if (message.type !== 'result' && message.type !== 'error') return;
    const pending = this.pending.get(message.id);
    if (pending === undefined) return;
    this.pending.delete(message.id);
    if (this.pending.size === 0) this.worker.unref();
    // Resolved in message order, so compile()'s decodes adopt rests in the order they were interned.
    if (message.type === 'result') pending.resolve(message.transfer);
    else pending.reject(rebuildError(message.error));
  }

  private failAll(error: unknown): void {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }
}

const paramClasses: Record<string, new (message: string, param: string) => Error> = {
  InvalidSchemaError,
  UnsupportedSchemaError,
  InvalidGrammarError,
  UnsatisfiableConstraintError,
  ConstraintTooLargeError,
  InvalidChoiceError,
};

/** The error the thread raised, as the same class here (others by their status class and reason). */
function rebuildError(error: SerializedError): Error {
  const param = error.param ?? '';
  const Class = paramClasses[error.name];
  if (Class !== undefined) return new Class(error.message, param);
  if (error.name === 'InvalidRegexError' && error.position !== null) {
    const suffix = ` at offset ${error.position}`;
    const message = error.message.endsWith(suffix) ? error.message.slice(0, -suffix.length) : error.message;
    return new InvalidRegexError(message, param, error.position);
  }
  if (error.name === 'VocabularyError') return new VocabularyError(error.message, { param: error.param });
  const code: ErrorCode = error.code !== null && isErrorCode(error.code) ? error.code : 'internal';
  const reason: ErrorReason | null =
    error.reason !== null && isErrorReason(error.reason) ? error.reason : null;
  return errorFromWire(code, reason, error.message, { param: error.param });
}
