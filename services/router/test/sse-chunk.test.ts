// The framed text chunk is byte for byte what JSON.stringify makes of the chunk object.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sseData } from '../src/openai/format.ts';
import { TextChunkFramer } from '../src/openai/sse-chunk.ts';

const texts = [
  '',
  ' the',
  'a"b\\c',
  'line\nbreak\ttab',
  '\u0000\u001f',
  'é漢字😀',
  '\ud800 lone',
  '</script>',
];

for (const object of ['chat.completion.chunk', 'text_completion'] as const) {
  for (const usageNull of [false, true]) {
    test(`${object} chunks${usageNull ? ' with usage: null' : ''} match the built object`, () => {
      const header = { id: 'cmpl-"x"', object, created: 1700000000, model: 'tiny "llama"', usageNull };
      const framer = new TextChunkFramer(header);
      for (const index of [0, 3, 0]) {
        for (const text of texts) {
          const choice =
            object === 'chat.completion.chunk'
              ? { index, delta: { content: text }, logprobs: null, finish_reason: null }
              : { index, text, logprobs: null, finish_reason: null };
          const chunk: Record<string, unknown> = {
            id: header.id,
            object,
            created: header.created,
            model: header.model,
            system_fingerprint: null,
            choices: [choice],
          };
          if (usageNull) chunk.usage = null;
          assert.equal(framer.event(index, text), sseData(chunk));
        }
      }
    });
  }
}
