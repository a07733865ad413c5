// Tokenization off the event loop. A long prompt takes the tokenizer hundreds of milliseconds;
// on the router's event loop that would stall every other client (issue 18, defect 4). Short
// texts are encoded inline (a thread hop costs more than they do); longer ones go to a small pool
// of worker threads, each with its own copy of the checkpoint's tokenizer.
import { Worker } from 'node:worker_threads';
import { InternalError } from '@tandem/common';
import type { TextTokenizer } from '@tandem/tokenizer';

/** Texts up to this many UTF-16 code units are encoded on the calling thread. */
export const defaultInlineChars = 8192;

interface Job {
  id: number;
  text: string;
  addSpecialTokens: boolean;
  resolve: (ids: number[]) => void;
  reject: (error: unknown) => void;
}

/** What a tokenize thread answers. */
export type TokenizeReply = { id: number; ids: Uint32Array } | { id: number; error: string };

/** What a tokenize thread is asked. */
export interface TokenizeAsk {
  id: number;
  text: string;
  addSpecialTokens: boolean;
}

class TokenizeThread {
  readonly #worker: Worker;
  readonly #jobs = new Map<number, Job>();

  constructor(modelDir: string, onIdle: (thread: TokenizeThread) => void) {
    this.#worker = new Worker(new URL('./tokenize-thread.ts', import.meta.url), { workerData: { modelDir } });
    this.#worker.unref();
    this.#worker.on('message', (reply: TokenizeReply) => {
      const job = this.#jobs.get(reply.id);
      if (job === undefined) return;
      this.#jobs.delete(reply.id);
      if ('error' in reply) job.reject(new InternalError(`tokenization failed: ${reply.error}`));
      else job.resolve(Array.from(reply.ids));
      onIdle(this);
    });
    this.#worker.on('error', (error) => {
      for (const job of this.#jobs.values())
        job.reject(new InternalError('the tokenize thread failed', { cause: error }));
      this.#jobs.clear();
    });
  }

  get numJobs(): number {
    return this.#jobs.size;
  }

  run(job: Job): void {
    this.#jobs.set(job.id, job);
    const ask: TokenizeAsk = { id: job.id, text: job.text, addSpecialTokens: job.addSpecialTokens };
    this.#worker.postMessage(ask);
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
  }
}

export interface TokenizePoolParams {
  /** The checkpoint folder each thread loads its tokenizer from. */
  modelDir: string;
  /** Worker threads (started on first use). */
  numThreads: number;
  inlineChars?: number;
}

export class TokenizePool {
  readonly #params: TokenizePoolParams;
  readonly #tokenizer: TextTokenizer;
  readonly #inlineChars: number;
  #threads: TokenizeThread[] = [];
  /** Jobs waiting for a free thread (each thread runs one job at a time). */
  readonly #waiting: Job[] = [];
  #nextId = 0;

  constructor(params: TokenizePoolParams, tokenizer: TextTokenizer) {
    this.#params = params;
    this.#tokenizer = tokenizer;
    this.#inlineChars = params.inlineChars ?? defaultInlineChars;
  }

  encode(text: string, addSpecialTokens: boolean): Promise<number[]> {
    if (text.length <= this.#inlineChars || this.#params.numThreads === 0) {
      return Promise.resolve(this.#tokenizer.encode(text, { addSpecialTokens }));
    }
    return new Promise((resolve, reject) => {
      this.#waiting.push({ id: this.#nextId++, text, addSpecialTokens, resolve, reject });
      this.#dispatch();
    });
  }

  async close(): Promise<void> {
    const threads = this.#threads;
    this.#threads = [];
    await Promise.all(threads.map((thread) => thread.close()));
  }

  #dispatch(): void {
    while (this.#waiting.length > 0) {
      let thread = this.#threads.find((t) => t.numJobs === 0);
      if (thread === undefined && this.#threads.length < this.#params.numThreads) {
        thread = new TokenizeThread(this.#params.modelDir, () => this.#dispatch());
        this.#threads.push(thread);
      }
      if (thread === undefined) return;
      const job = this.#waiting.shift();
      if (job !== undefined) thread.run(job);
    }
  }
}
