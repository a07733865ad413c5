import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChoiceOutput, type IncrementalDecoder } from '../src/openai/choice-output.ts';
import { StopStringMatcher } from '../src/openai/stop-strings.ts';

test('a stop string split across pushes never leaks a partial prefix', () => {
  const matcher = new StopStringMatcher(['</end>'], false);
  const pieces = ['hello </', 'en', 'd> tail'];
  const released = pieces.map((piece) => matcher.push(piece));
  assert.deepEqual(
    released.map((r) => r.text),
    ['hello ', '', ''],
  );
  assert.equal(released[2]!.matchedStop, '</end>');
  assert.equal(matcher.stopped, true);
  assert.equal(matcher.push('more').text, '');
});

test('held text that does not become a stop string is released', () => {
  const matcher = new StopStringMatcher(['abc'], false);
  assert.equal(matcher.push('xxab').text, 'xx');
  assert.equal(matcher.push('x').text, 'abx');
  assert.equal(matcher.push('a').text, '');
  assert.equal(matcher.flush(), 'a');
});

test('the earliest of several stop strings wins; include_stop_str_in_output keeps it', () => {
  const matcher = new StopStringMatcher(['world', 'lo w'], true);
  const result = matcher.push('hello world');
  assert.equal(result.text, 'hello w');
  assert.equal(result.matchedStop, 'lo w');
});

/** Decodes each id to a fixed string (a stand-in tokenizer with a known vocabulary). */
function tableDecoder(vocab: Record<number, string>): IncrementalDecoder {
  return { push: (id) => vocab[id] ?? '?', flush: () => '' };
}

test('ChoiceOutput trims logprob tokens at the stop string and counts only released tokens', () => {
  const vocab = { 1: 'The', 2: ' cat', 3: ' sat', 4: '.', 5: ' Then' };
  const output = new ChoiceOutput(tableDecoder(vocab), [' sat'], false);
  const first = output.push([1, 2], [-0.1, -0.2], null);
  assert.equal(first.text, 'The cat');
  assert.deepEqual(
    first.tokens.map((t) => t.tokenId),
    [1, 2],
  );
  const second = output.push([3, 4, 5], [-0.3, -0.4, -0.5], null);
  assert.equal(second.text, '');
  assert.equal(second.matchedStop, ' sat');
  assert.deepEqual(second.tokens, []);
  assert.equal(output.numReleasedTokens, 2);
  assert.equal(output.finished, true);
});

test('ChoiceOutput holds tokens back with their text and releases them at the end', () => {
  const vocab = { 1: 'a', 2: '<', 3: 'b' };
  const output = new ChoiceOutput(tableDecoder(vocab), ['<stop>'], false);
  const first = output.push([1, 2], null, null);
  assert.equal(first.text, 'a');
  assert.deepEqual(
    first.tokens.map((t) => t.tokenId),
    [1],
  );
  const end = output.finish();
  assert.equal(end.text, '<');
  assert.deepEqual(
    end.tokens.map((t) => [t.tokenId, t.textOffset]),
    [[2, 1]],
  );
  assert.equal(output.numReleasedTokens, 2);
});
