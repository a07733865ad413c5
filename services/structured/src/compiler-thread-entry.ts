// The worker thread behind CompilerThread (compiler-thread.ts): one Vocabulary and one
// GrammarCompiler, requests answered in order. A compile answers with the grammar as transfer
// data (transfer.ts); a check with nothing; a refusal with the error's fields.
import { parentPort, workerData } from 'node:worker_threads';
import { TandemError } from '@tandem/common';
import { type CompilerOptions, type ConstraintSpec, GrammarCompiler } from './compiler.ts';
import { InvalidRegexError } from './errors.ts';
import { GrammarSender } from './transfer.ts';
import { Vocabulary, type VocabularyOptions } from './vocabulary.ts';

export interface ThreadData {
  modelDir: string;
  vocabulary: VocabularyOptions;
  compiler: CompilerOptions;
  /** Send the vocabulary to the caller at start (it restores grammars). */
  sendVocabulary: boolean;
}

export type ThreadRequest = { id: number; op: 'check' | 'compile'; spec: ConstraintSpec };

/** An error as data: the class name (rebuilt as that class when it is one of ours), reason, param. */
export interface SerializedError {
  name: string;
  message: string;
  reason: string | null;
  code: string | null;
  param: string | null;
  /** InvalidRegexError's offset. */
  position: number | null;
}

export function serializeError(error: unknown): SerializedError {
  const isTandem = error instanceof TandemError;
  return {
    name: error instanceof Error ? error.name : 'Error',
    message: error instanceof Error ? error.message : String(error),
    reason: isTandem ? error.reason : null,
    code: isTandem ? error.code : null,
    param: isTandem ? error.param : null,
    position: error instanceof InvalidRegexError ? error.position : null,
  };
}

async function serve(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('compiler-thread-entry.ts runs as a worker thread');
  const data = workerData as ThreadData;
  let compiler: GrammarCompiler;
  let sender: GrammarSender;
  try {
    const vocabulary = await Vocabulary.load(data.modelDir, data.vocabulary);
    compiler = new GrammarCompiler(vocabulary, data.compiler);
    sender = new GrammarSender(compiler.tokenRests);
  } catch (error) {
    port.postMessage({ type: 'failed', error: serializeError(error) });
    return;
  }
  // The vocabulary goes along, so the caller's thread need not read tokenizer.json again.
  port.postMessage({
    type: 'ready',
    vocabulary: data.sendVocabulary ? compiler.vocabulary.toTransfer() : null,
  });
  port.on('message', (request: ThreadRequest) => {
    try {
      if (request.op === 'check') {
        compiler.check(request.spec);
        port.postMessage({ type: 'result', id: request.id, transfer: null });
      } else {
        const { transfer, buffers } = sender.encodeMovable(compiler.compile(request.spec));
        port.postMessage({ type: 'result', id: request.id, transfer }, buffers);
      }
    } catch (error) {
      port.postMessage({ type: 'error', id: request.id, error: serializeError(error) });
    }
  });
}

await serve();
