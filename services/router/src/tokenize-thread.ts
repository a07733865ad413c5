// One tokenize thread of the router's pool (tokenize-pool.ts): loads the checkpoint's tokenizer
// once, then encodes the texts it is sent, one at a time.
import { parentPort, workerData } from 'node:worker_threads';
import { InternalError } from '@tandem/common';
import { TextTokenizer } from '@tandem/tokenizer';
import type { TokenizeAsk, TokenizeReply } from './tokenize-pool.ts';

const port = parentPort;
if (port === null) throw new InternalError('tokenize-thread.ts runs as a worker thread');
const tokenizer = TextTokenizer.load((workerData as { modelDir: string }).modelDir);

port.on('message', (ask: TokenizeAsk) => {
  tokenizer.then(
    (loaded) => {
      let reply: TokenizeReply;
      try {
        const ids = Uint32Array.from(loaded.encode(ask.text, { addSpecialTokens: ask.addSpecialTokens }));
        reply = { id: ask.id, ids };
        port.postMessage(reply, [ids.buffer]);
        return;
      } catch (error) {
        reply = { id: ask.id, error: error instanceof Error ? error.message : String(error) };
      }
      port.postMessage(reply);
    },
    (error: unknown) => {
      const reply: TokenizeReply = {
        id: ask.id,
        error: error instanceof Error ? error.message : String(error),
      };
      port.postMessage(reply);
    },
  );
});
