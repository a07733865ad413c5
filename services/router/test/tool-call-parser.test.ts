// Tool calls out of text: both formats, whole and split at every possible point (the streamed
// pieces must add up to the whole-text result), content around calls, parallel calls, keys in
// another order, malformed and truncated calls.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toolCallFormat } from '../src/tools/formats.ts';
import { collectToolDeltas, ToolCallParser, type ToolDelta } from '../src/tools/tool-call-parser.ts';

const hermes = toolCallFormat('hermes').syntax;
const llama = toolCallFormat('llama3_json').syntax;

function ids(): () => string {
  let n = 0;
  return () => `call_${n++}`;
}

function whole(syntax: typeof hermes, text: string) {
  const parser = new ToolCallParser(syntax, ids());
  return collectToolDeltas([...parser.push(text), ...parser.finish()]);
}

/** The text pushed in pieces at the given cut points. */
function streamed(syntax: typeof hermes, text: string, cuts: number[]): ToolDelta[] {
  const parser = new ToolCallParser(syntax, ids());
  const deltas: ToolDelta[] = [];
  let at = 0;
  for (const cut of [...cuts, text.length]) {
    deltas.push(...parser.push(text.slice(at, cut)));
    at = cut;
  }
  deltas.push(...parser.finish());
  return deltas;
}

/** Every split into two pieces, and one piece per character, give the whole-text result. */
function assertSplitsAgree(syntax: typeof hermes, text: string): void {
  const expected = whole(syntax, text);
  for (let cut = 0; cut <= text.length; cut++) {
    assert.deepEqual(collectToolDeltas(streamed(syntax, text, [cut])), expected, `cut at ${cut}`);
  }
  const perChar = streamed(
    syntax,
    text,
    Array.from({ length: text.length }, (_, i) => i),
  );
  assert.deepEqual(collectToolDeltas(perChar), expected, 'one character at a time');
}

describe('Hermes <tool_call> format', () => {
  const one =
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>';
  test('a call', () => {
    assert.deepEqual(whole(hermes, one), {
      content: null,
      calls: [{ id: 'call_0', name: 'get_weather', arguments: '{"city": "Paris", "unit": "c"}' }],
    });
    assertSplitsAgree(hermes, one);
  });

  test('content before parallel calls; whitespace between them dropped', () => {
    const text = `Let me check.\n${one}\n<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": [2, "}"]}}\n</tool_call>\n`;
    const result = whole(hermes, text);
    assert.equal(result.content, 'Let me check.');
    assert.deepEqual(
      result.calls.map((c) => [c.name, JSON.parse(c.arguments)]),
      [
        ['get_weather', { city: 'Paris', unit: 'c' }],
        ['add', { a: 1, b: [2, '}'] }],
      ],
    );
    assertSplitsAgree(hermes, text);
  });

  test('arguments stream in fragments as they are generated', () => {
    const deltas = streamed(hermes, one, [30, 50, 60, 70]);
    const fragments = deltas.filter((d) => d.type === 'arguments');
    assert.ok(fragments.length >= 3, JSON.stringify(deltas));
    assert.deepEqual(deltas[0], { type: 'call', index: 0, id: 'call_0', name: 'get_weather' });
  });

  test('keys in another order: the call goes out whole when it ends', () => {
    const text = '<tool_call>\n{"arguments": {"x": true}, "name": "f"}\n</tool_call>';
    assert.deepEqual(whole(hermes, text).calls, [{ id: 'call_0', name: 'f', arguments: '{"x":true}' }]);
    assertSplitsAgree(hermes, text);
  });

  test('plain text, a lone "<" and a malformed call stay content', () => {
    assert.deepEqual(whole(hermes, 'a < b and <tool'), { content: 'a < b and <tool', calls: [] });
    const malformed = 'x <tool_call> not json </tool_call>';
    assert.deepEqual(whole(hermes, malformed), { content: malformed, calls: [] });
    assertSplitsAgree(hermes, malformed);
    assertSplitsAgree(hermes, 'trailing spaces   \n');
  });

  test('a truncated call keeps what was generated of its arguments', () => {
    const result = whole(hermes, '<tool_call>\n{"name": "f", "arguments": {"a": [1, 2');
    assert.deepEqual(result.calls, [{ id: 'call_0', name: 'f', arguments: '{"a": [1, 2' }]);
  });
});

describe('Llama 3 JSON format', () => {
  test('one call, parallel calls, the <|python_tag|> prefix', () => {
    const text = '{"name": "get_weather", "parameters": {"city": "Oslo"}}';
    assert.deepEqual(whole(llama, text).calls, [
      { id: 'call_0', name: 'get_weather', arguments: '{"city": "Oslo"}' },
    ]);
    const two = `<|python_tag|>${text}; {"name": "add", "parameters": {"a": 1, "b": 2}}`;
    const result = whole(llama, two);
    assert.equal(result.content, null);
    assert.deepEqual(
      result.calls.map((c) => c.name),
      ['get_weather', 'add'],
    );
    assertSplitsAgree(llama, text);
    assertSplitsAgree(llama, two);
  });

  test('an output that does not open with a call is content, all of it', () => {
    const text = 'The answer is {"name": "x"}';
    assert.deepEqual(whole(llama, text), { content: text, calls: [] });
    assertSplitsAgree(llama, text);
    assertSplitsAgree(llama, '  {not a call');
  });
});
