import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseParser } from '../src/sse.ts';

const STREAM =
  ': keep-alive comment\r\n\r\n' +
  'data: {"a":1}\r\n\r\n' +
  'event: note\ndata: line one\ndata:line two\nid: 7\n\n' +
  'data: héllo ✓\r\r' +
  'data\n\n' +
  'data: [DONE]\n\n';

const EXPECTED = [
  { event: null, data: '{"a":1}', id: null },
  { event: 'note', data: 'line one\nline two', id: '7' },
  { event: null, data: 'héllo ✓', id: '7' },
  { event: null, data: '', id: '7' },
  { event: null, data: '[DONE]', id: '7' },
];

test('SSE parser: comments, CRLF / CR / LF line ends, multi-line data, fields without value', () => {
  assert.deepEqual(new SseParser().push(STREAM), EXPECTED);
});

test('SSE parser gives the same events however the stream is split', () => {
  for (let cut = 0; cut <= STREAM.length; cut++) {
    const parser = new SseParser();
    const events = [...parser.push(STREAM.slice(0, cut)), ...parser.push(STREAM.slice(cut))];
    assert.deepEqual(events, EXPECTED, `split at ${cut}`);
  }
  const parser = new SseParser();
  const oneByOne = [...STREAM].flatMap((ch) => parser.push(ch));
  assert.deepEqual(oneByOne, EXPECTED);
});

test('SSE parser drops an event whose blank line never came', () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push('data: x\n'), []);
  parser.end();
  assert.deepEqual(parser.push('data: y\n\n'), [{ event: null, data: 'y', id: null }]);
});
