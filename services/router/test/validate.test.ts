import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidRequestError, ModelNotFoundError, UnsupportedError } from '../src/errors.ts';
import { renderError } from '../src/openai/errors.ts';
import {
  defaultValidationLimits,
  validateChatRequest,
  validateCompletionRequest,
} from '../src/openai/validate.ts';

const limits = { ...defaultValidationLimits, servedModelNames: ['m'], vocabSize: 1000 };
const messages = [{ role: 'user', content: 'hi' }];

function paramOf(run: () => unknown): string | null {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof InvalidRequestError || error instanceof UnsupportedError, String(error));
    return error.param;
  }
  assert.fail('expected a validation error');
}

test('a chat request with every extra normalizes', () => {
  const request = validateChatRequest(
    {
      model: 'm',
      messages: [
        {
          role: 'system',
          content: [
            { type: 'text', text: 'be ' },
            { type: 'text', text: 'brief' },
          ],
        },
        ...messages,
      ],
      temperature: 0,
      top_k: -1,
      min_p: 0.1,
      repetition_penalty: 1.1,
      ignore_eos: true,
      stop_token_ids: [5],
      min_tokens: 2,
      max_completion_tokens: 8,
      include_stop_str_in_output: true,
      skip_special_tokens: false,
      logprobs: true,
      top_logprobs: 3,
      n: 2,
      stop: 'END',
      stream: true,
      stream_options: { include_usage: true },
      logit_bias: { '7': -100 },
      seed: 3,
      unknown_field: 1,
    },
    limits,
  );
  assert.equal(request.messages[0]!.content, 'be brief');
  assert.equal(request.options.sampling.topK, 0);
  assert.equal(request.options.maxTokens, 8);
  assert.deepEqual(request.options.stop, ['END']);
  assert.equal(request.options.includeUsage, true);
  assert.equal(request.options.sampling.logitBias.get(7), -100);
  assert.equal(request.addGenerationPrompt, true);
});

test('each bad field is named in the error', () => {
  const chat = (extra: object) => () => validateChatRequest({ model: 'm', messages, ...extra }, limits);
  assert.equal(paramOf(chat({ temperature: 3 })), 'temperature');
  assert.equal(paramOf(chat({ top_p: 0 })), 'top_p');
  assert.equal(paramOf(chat({ n: 0 })), 'n');
  assert.equal(paramOf(chat({ max_tokens: -1 })), 'max_tokens');
  assert.equal(paramOf(chat({ top_logprobs: 2 })), 'top_logprobs');
  assert.equal(paramOf(chat({ stream_options: { include_usage: true } })), 'stream_options');
  assert.equal(paramOf(chat({ stop: [1] })), 'stop.0');
  assert.equal(paramOf(chat({ messages: [] })), 'messages');
  assert.equal(paramOf(chat({ messages: [{ role: 'robot', content: 'x' }] })), 'messages.0.role');
  assert.equal(paramOf(chat({ tools: [{ type: 'function' }] })), 'tools.0.function');
  const tool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } };
  assert.equal(
    paramOf(chat({ tools: [{ type: 'function', function: { name: 'a b' } }] })),
    'tools.0.function.name',
  );
  assert.equal(paramOf(chat({ tools: [tool, tool] })), 'tools.1.function.name');
  assert.equal(paramOf(chat({ tool_choice: 'required' })), 'tool_choice');
  assert.equal(
    paramOf(chat({ tools: [tool], tool_choice: { type: 'function', function: { name: 'other' } } })),
    'tool_choice.function.name',
  );
  assert.equal(paramOf(chat({ functions: [] })), 'functions');
  assert.equal(paramOf(chat({ messages: [{ role: 'tool', content: 'x' }] })), 'messages.0.tool_call_id');
  assert.equal(
    paramOf(chat({ messages: [{ role: 'user', content: 'x', tool_calls: [] }] })),
    'messages.0.tool_calls',
  );
  assert.equal(
    paramOf(
      chat({
        messages: [
          {
            role: 'assistant',
            tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{' } }],
          },
        ],
      }),
    ),
    'messages.0.tool_calls.0.function.arguments',
  );
  assert.equal(
    paramOf(chat({ tools: [tool], tool_choice: 'required', response_format: { type: 'json_object' } })),
    'tool_choice',
  );
  assert.equal(
    paramOf(chat({ response_format: { type: 'json_schema', json_schema: {} } })),
    'response_format.json_schema.name',
  );
  assert.equal(paramOf(chat({ response_format: { type: 'xml' } })), 'response_format.type');
  assert.equal(paramOf(chat({ guided_regex: 5 })), 'guided_regex');
  assert.equal(paramOf(chat({ guided_choice: [] })), 'guided_choice');
  assert.equal(paramOf(chat({ guided_json: '{not json' })), 'guided_json');
  assert.equal(paramOf(chat({ structured_outputs: { choice: ['a', 1] } })), 'structured_outputs.choice.1');
  assert.equal(
    paramOf(chat({ response_format: { type: 'json_object' }, guided_regex: 'a+' })),
    'guided_regex',
  );
  assert.equal(paramOf(chat({ min_tokens: 9, max_tokens: 3 })), 'min_tokens');
  const completion = (extra: object) => () => validateCompletionRequest({ model: 'm', ...extra }, limits);
  assert.equal(paramOf(completion({})), 'prompt');
  assert.equal(paramOf(completion({ prompt: [1, -2] })), 'prompt.1');
  assert.equal(paramOf(completion({ prompt: 'x', logprobs: 50 })), 'logprobs');
  assert.equal(paramOf(completion({ prompt: 'x', suffix: 'y' })), 'suffix');
});

test('output constraints and tools normalize', () => {
  const chat = (extra: object) => validateChatRequest({ model: 'm', messages, ...extra }, limits);
  assert.equal(chat({}).options.constraint, null);
  assert.equal(chat({ response_format: { type: 'text' } }).options.constraint, null);
  assert.deepEqual(chat({ response_format: { type: 'json_object' } }).options.constraint, {
    type: 'json_object',
    param: 'response_format',
  });
  const schema = { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] };
  assert.deepEqual(
    chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema, strict: true } } })
      .options.constraint,
    { type: 'json_schema', schema, param: 'response_format.json_schema.schema' },
  );
  assert.deepEqual(chat({ guided_json: JSON.stringify(schema) }).options.constraint, {
    type: 'json_schema',
    schema,
    param: 'guided_json',
  });
  assert.deepEqual(chat({ structured_outputs: { regex: 'a+' } }).options.constraint, {
    type: 'regex',
    pattern: 'a+',
    param: 'structured_outputs.regex',
  });
  assert.deepEqual(chat({ guided_choice: ['x', 'y'] }).options.constraint, {
    type: 'choice',
    choices: ['x', 'y'],
    param: 'guided_choice',
  });
  assert.deepEqual(
    validateCompletionRequest({ model: 'm', prompt: 'p', guided_grammar: 'root ::= "a"' }, limits).options
      .constraint,
    { type: 'grammar', grammar: 'root ::= "a"', param: 'guided_grammar' },
  );
  const tool = { type: 'function', function: { name: 'f', parameters: { type: 'object' } } };
  const withTools = chat({ tools: [tool] });
  assert.deepEqual(withTools.tools.choice, { type: 'auto' });
  assert.equal(withTools.tools.parallel, true);
  assert.equal(withTools.tools.tools[0]?.name, 'f');
  const named = chat({
    tools: [tool],
    tool_choice: { type: 'function', function: { name: 'f' } },
    parallel_tool_calls: false,
  });
  assert.deepEqual(named.tools.choice, { type: 'function', name: 'f' });
  assert.equal(named.tools.parallel, false);
  const roundTrip = chat({
    messages: [
      { role: 'user', content: 'weather?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"x": 1}' } }],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
    ],
  });
  assert.deepEqual(roundTrip.messages[1]?.toolCalls, [{ id: 'c1', name: 'f', arguments: { x: 1 } }]);
  assert.equal(roundTrip.messages[1]?.content, '');
  assert.equal(roundTrip.messages[2]?.toolCallId, 'c1');
});

test('completions accept text, token ids and batches; default max_tokens is 16', () => {
  const one = validateCompletionRequest({ model: 'm', prompt: 'abc' }, limits);
  assert.deepEqual(one.prompts, [{ type: 'text', text: 'abc' }]);
  assert.equal(one.options.maxTokens, 16);
  const ids = validateCompletionRequest({ model: 'm', prompt: [1, 2, 3], logprobs: 2 }, limits);
  assert.deepEqual(ids.prompts, [{ type: 'tokens', tokenIds: [1, 2, 3] }]);
  assert.equal(ids.options.topLogprobs, 2);
  const batch = validateCompletionRequest({ model: 'm', prompt: ['a', [4]] }, limits);
  assert.equal(batch.prompts.length, 2);
});

test('an unknown model is a 404 naming param model; errors render in OpenAI shape', () => {
  assert.throws(() => validateChatRequest({ model: 'other', messages }, limits), ModelNotFoundError);
  try {
    validateChatRequest({ model: 'other', messages }, limits);
  } catch (error) {
    const rendered = renderError(error);
    assert.equal(rendered.status, 404);
    assert.deepEqual(rendered.body.error.param, 'model');
    assert.equal(rendered.body.error.code, 'model_not_found');
    assert.equal(rendered.body.error.type, 'invalid_request_error');
  }
});
