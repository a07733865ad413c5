// Hostile requests for the router (issue 18): bad JSON, wrong types, huge and out-of-range values,
// bad escapes, malformed HTTP, huge bodies, abrupt disconnects; each drawn from a seeded source so
// a failing case can be replayed. A case says what a correct router must answer: never a 5xx,
// always OpenAI's error shape, and the `param` at fault where the case knows it.
import { createRng, type Rng } from '../src/rng.ts';

export interface FuzzCase {
  /** Its family (reports count failures by kind). */
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | Buffer | null;
  /** A request sent as raw bytes over a socket (malformed HTTP); method/path/body unused. */
  raw: Buffer | null;
  /** The `param` a 400 must name (a prefix: 'prompt' accepts 'prompt.3'), or null: not checked. */
  expectParam: string | null;
  /** Hang up: before any response (after `afterMs`), or once the first response byte arrived. */
  abort: { type: 'early'; afterMs: number } | { type: 'first-byte' } | null;
  /** A valid request: it must succeed (200, choices). */
  valid: boolean;
}

export interface CaseParams {
  model: string;
  vocabSize: number;
  /** The router's --max-body-bytes (huge bodies exceed it). */
  maxBodyBytes: number;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Values of every JSON type, odd ones included. */
function oddValue(rng: Rng): Json {
  const values: Json[] = [
    null,
    true,
    false,
    0,
    -1,
    1.5,
    -0.0001,
    1e308,
    -1e308,
    2 ** 53,
    2 ** 64,
    4294967296,
    '',
    'x',
    'NaN',
    'Infinity',
    '\u0000',
    '\ud800',
    '💥'.repeat(50),
    'a'.repeat(5000),
    [],
    [1, 'a', null],
    {},
    { a: { b: [1, { c: 'd' }] } },
    Array.from({ length: 300 }, (_, i) => i),
  ];
  return values[rng.int(0, values.length - 1)]!;
}

/** Fields with values that are wrong for them, and the param the router must name. */
function knownBad(
  params: CaseParams,
): [field: string, values: Json[], param: string, api?: 'chat' | 'completion'][] {
  const { vocabSize } = params;
  return [
    ['temperature', ['x', -1, 2.5, [], {}, true, 1e308], 'temperature'],
    ['top_p', [0, -0.5, 1.5, 'x', []], 'top_p'],
    ['top_k', [-2, 1.5, 2 ** 40, 'x', {}], 'top_k'],
    ['min_p', [-0.1, 1.1, 'x'], 'min_p'],
    ['repetition_penalty', [0, -1, 3, 'x'], 'repetition_penalty'],
    ['frequency_penalty', [-3, 3, 'x', []], 'frequency_penalty'],
    ['presence_penalty', [-3, 3, 'x'], 'presence_penalty'],
    ['seed', ['x', 1.5, [], {}], 'seed'],
    ['n', [0, -1, 17, 1e9, 1.5, 'x', [], true], 'n'],
    ['max_tokens', [0, -5, 1.5, 'x', 1e12, 2 ** 53, true], 'max_tokens'],
    ['max_completion_tokens', [0, -1, 'x', 1e15], 'max_completion_tokens'],
    ['min_tokens', [-1, 'x', 2 ** 40, 1.5], 'min_tokens'],
    ['stop', [123, [1], Array.from({ length: 17 }, () => 'a'), [''], {}, true], 'stop'],
    ['stop_token_ids', ['x', [-1], [2 ** 32], [1.5], [vocabSize], [2 ** 53], {}, [null]], 'stop_token_ids'],
    [
      'logit_bias',
      ['x', { abc: 1 }, { '1': 500 }, { [String(vocabSize)]: 1 }, { '4294967296': 1 }, { '1': 'x' }, [], 5],
      'logit_bias',
    ],
    ['stream', ['yes', 1, {}], 'stream'],
    ['ignore_eos', ['yes', 1], 'ignore_eos'],
    ['include_stop_str_in_output', [0, 'no'], 'include_stop_str_in_output'],
    ['skip_special_tokens', ['x'], 'skip_special_tokens'],
    ['best_of', [3, 'x', 0], 'best_of'],
    ['model', [123, [], {}, true, 'no-such-model', ''], 'model'],
    ['stream_options', [{ include_usage: true }], 'stream_options'],
    ['logprobs', [-1, 21, 'x', 1.5, 2 ** 40], 'logprobs', 'completion'],
    ['echo', ['x', 1], 'echo', 'completion'],
    ['suffix', ['x', 5], 'suffix', 'completion'],
    [
      'prompt',
      [
        [],
        [-1],
        [2 ** 32],
        [1, 2, vocabSize],
        [[1], [2 ** 40]],
        123,
        {},
        [true],
        [[]],
        Array.from({ length: 65 }, () => 'p'),
        [1.5],
        [null],
        ['ok', {}],
      ],
      'prompt',
      'completion',
    ],
    [
      'messages',
      [
        [],
        'x',
        [{}],
        [null],
        [{ role: 'alien', content: 'x' }],
        [{ role: 'user', content: 123 }],
        [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }],
        [{ role: 'user', content: [{ type: 'text', text: 5 }] }],
        [{ role: 'user', content: ['x'] }],
        [{ role: 'user', content: 'x', name: 5 }],
        [{ role: 'user', content: 'x', tool_calls: [{}] }],
        {},
      ],
      'messages',
      'chat',
    ],
    ['logprobs', ['x', 1, {}], 'logprobs', 'chat'],
    ['top_logprobs', [-1, 21, 'x'], 'top_logprobs', 'chat'],
    ['response_format', [{ type: 'json_object' }, 'x', { type: 'json_schema' }], 'response_format', 'chat'],
    ['tools', [[{ type: 'function' }], 'x'], 'tools', 'chat'],
    ['tool_choice', ['required', { type: 'function' }], 'tool_choice', 'chat'],
    ['chat_template_kwargs', ['x', [], 5], 'chat_template_kwargs', 'chat'],
    ['add_generation_prompt', ['x'], 'add_generation_prompt', 'chat'],
    ['continue_final_message', [true, 'x'], 'continue_final_message', 'chat'],
  ];
}

const chatPath = '/v1/chat/completions';
const completionPath = '/v1/completions';

function jsonCase(
  kind: string,
  path: string,
  body: unknown,
  expectParam: string | null,
  extra: Partial<FuzzCase> = {},
): FuzzCase {
  return {
    kind,
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    raw: null,
    expectParam,
    abort: null,
    valid: false,
    ...extra,
  };
}

function base(api: 'chat' | 'completion', model: string): Record<string, Json> {
  return api === 'chat'
    ? { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }
    : { model, prompt: 'hello', max_tokens: 2 };
}

/** A valid request: small, quick, streamed or not. */
export function validCase(rng: Rng, params: CaseParams): FuzzCase {
  const api = rng.next() < 0.5 ? 'chat' : 'completion';
  const body: Record<string, Json> = { ...base(api, params.model), max_tokens: rng.int(1, 4) };
  if (api === 'completion' && rng.next() < 0.3) body.prompt = [1, rng.int(3, params.vocabSize - 1), 7];
  if (rng.next() < 0.4) {
    body.stream = true;
    if (rng.next() < 0.5) body.stream_options = { include_usage: true };
  }
  if (rng.next() < 0.3) body.temperature = 0;
  if (rng.next() < 0.2) body.logprobs = api === 'chat' ? true : 2;
  return jsonCase('valid', api === 'chat' ? chatPath : completionPath, body, null, { valid: true });
}

/** One hostile request. */
export function hostileCase(rng: Rng, params: CaseParams): FuzzCase {
  const draw = rng.next();
  const api = rng.next() < 0.5 ? 'chat' : 'completion';
  const path = api === 'chat' ? chatPath : completionPath;
  const { model } = params;
  if (draw < 0.45) {
    // A known-bad value in one field.
    const table = knownBad(params).filter(([, , , only]) => only === undefined || only === api);
    const [field, values, param] = table[rng.int(0, table.length - 1)]!;
    const body = { ...base(api, model), [field]: values[rng.int(0, values.length - 1)]! };
    if (field === 'stream_options') delete body.stream;
    if (field === 'best_of') body.n = 1;
    if (field === 'continue_final_message' && body.continue_final_message === true) {
      // The last message is the user's: nothing to continue.
      body.add_generation_prompt = false;
    }
    if (field === 'top_logprobs') body.logprobs = rng.next() < 0.5;
    return jsonCase(`bad-${field}`, path, body, param);
  }
  if (draw < 0.6) {
    // Any odd value in any field (the answer is not known: no 5xx and the right shape is).
    const fields = [
      'temperature',
      'n',
      'max_tokens',
      'stop',
      'logprobs',
      'prompt',
      'messages',
      'seed',
      'logit_bias',
      'stream',
      'user',
      'tools',
      'top_p',
      'stream_options',
      'echo',
      'min_tokens',
      'chat_template_kwargs',
    ];
    const body: Record<string, Json> = { ...base(api, model) };
    const numFields = rng.int(1, 3);
    for (let i = 0; i < numFields; i++) body[fields[rng.int(0, fields.length - 1)]!] = oddValue(rng);
    return jsonCase(
      'odd-values',
      path,
      body,
      null,
      rng.next() < 0.5 ? { abort: { type: 'early', afterMs: 1500 } } : {},
    );
  }
  if (draw < 0.72) return malformedBody(rng, path);
  if (draw < 0.8) return badPath(rng);
  if (draw < 0.86) return rawHttp(rng);
  if (draw < 0.92) return disconnect(rng, params, api, path);
  if (draw < 0.96) return largeInput(rng, params, api, path);
  return hugeBody(rng, params, path);
}

function malformedBody(rng: Rng, path: string): FuzzCase {
  const bodies: (string | Buffer)[] = [
    '',
    '{',
    '{"model":',
    '{"model": "x",}',
    "{'model': 'x'}",
    'null',
    '[]',
    '"string"',
    '123',
    'true',
    '{"model": NaN}',
    '{"a":1}{"b":2}',
    '\u0000\u0001\u0002',
    Buffer.from([0xff, 0xfe, 0xfd, 0x7b, 0x7d]),
    Buffer.from('{"model": "\xc3\x28"}', 'latin1'),
    '{"model": "\\ud800", "prompt": "\\udfff"}',
    `${'['.repeat(50_000)}${']'.repeat(50_000)}`,
    `{"prompt": ${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`,
    JSON.stringify({ model: 'x', prompt: 'hi' }).slice(0, rng.int(1, 20)),
  ];
  const body = bodies[rng.int(0, bodies.length - 1)]!;
  const contentTypes = [
    'application/json',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    '',
  ];
  const contentType = contentTypes[rng.int(0, contentTypes.length - 1)]!;
  return {
    kind: 'malformed-body',
    method: 'POST',
    path,
    headers: contentType === '' ? {} : { 'content-type': contentType },
    body,
    raw: null,
    expectParam: null,
    abort: null,
    valid: false,
  };
}

function badPath(rng: Rng): FuzzCase {
  const paths = [
    '/v1/models/%E0%A4%A',
    '/debug/routing/%E0%A4%A',
    '/v1/models/%',
    '/debug/routing/%zz',
    '/v1/models/%00',
    '/v1/models/..%2F..%2Fetc%2Fpasswd',
    '/v1/models/tiny-llama%20',
    '/v1/completions/../../etc/passwd',
    '/%00',
    '//',
    '/v1/chat/completions?x=%zz&y=%',
    '/v1/embeddings',
    '/v2/completions',
    `/v1/models/${'a'.repeat(4000)}`,
    '/debug/routing/',
    '/health/../metrics',
  ];
  const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];
  const method = methods[rng.int(0, methods.length - 1)]!;
  return {
    kind: 'bad-path',
    method,
    path: paths[rng.int(0, paths.length - 1)]!,
    headers: {},
    body: method === 'POST' || method === 'PUT' ? '{}' : null,
    raw: null,
    expectParam: null,
    abort: null,
    valid: false,
  };
}

function rawHttp(rng: Rng): FuzzCase {
  const requests = [
    'GARBAGE\r\n\r\n',
    'GET\r\n\r\n',
    'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}',
    'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n',
    'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}',
    `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    'GET /health HTTP/9.9\r\nHost: x\r\n\r\n',
    'GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
    `GET /${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    'GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: \u0000\u0001\r\n\r\n',
  ];
  return {
    kind: 'raw-http',
    method: '',
    path: '',
    headers: {},
    body: null,
    raw: Buffer.from(requests[rng.int(0, requests.length - 1)]!, 'latin1'),
    expectParam: null,
    abort: null,
    valid: false,
  };
}

function disconnect(rng: Rng, params: CaseParams, api: 'chat' | 'completion', path: string): FuzzCase {
  const body: Record<string, Json> = {
    ...base(api, params.model),
    max_tokens: rng.int(50, 400),
    ignore_eos: true,
  };
  if (rng.next() < 0.6) body.stream = true;
  const abort: FuzzCase['abort'] =
    body.stream === true && rng.next() < 0.5
      ? { type: 'first-byte' }
      : { type: 'early', afterMs: rng.int(0, 30) };
  return jsonCase('disconnect', path, body, null, { abort });
}

/** Long inputs: over the context (a 400 context_length_exceeded), or just large. */
function largeInput(rng: Rng, params: CaseParams, api: 'chat' | 'completion', path: string): FuzzCase {
  const body: Record<string, Json> = { ...base(api, params.model) };
  const choice = rng.int(0, 4);
  if (choice === 0) {
    const text = 'lorem ipsum dolor '.repeat(rng.int(20_000, 60_000));
    if (api === 'chat') body.messages = [{ role: 'user', content: text }];
    else body.prompt = text;
    return jsonCase('too-long', path, body, api === 'chat' ? 'messages' : 'prompt');
  }
  if (choice === 1) {
    if (api === 'chat')
      body.messages = Array.from({ length: 3000 }, (_, i) => ({
        role: i % 2 === 0 ? 'user' : 'assistant',
        content: 'x',
      }));
    else body.prompt = Array.from({ length: 50_000 }, (_, i) => 3 + (i % 400));
    return jsonCase('many-items', path, body, api === 'chat' ? 'messages' : 'prompt');
  }
  if (choice === 2) {
    body.logit_bias = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [String(i % 400), 1]));
    return jsonCase('big-logit-bias', path, body, null, { abort: { type: 'early', afterMs: 2000 } });
  }
  if (choice === 3) {
    body.stop = Array.from({ length: 16 }, () => 'z'.repeat(rng.int(1, 3000)));
    return jsonCase('long-stops', path, body, null, { abort: { type: 'early', afterMs: 2000 } });
  }
  body.n = 16;
  body.max_tokens = rng.int(1000, 4000);
  body.logprobs = api === 'chat' ? true : 20;
  if (api === 'chat') body.top_logprobs = 20;
  return jsonCase('costly', path, body, null, { abort: { type: 'early', afterMs: rng.int(50, 500) } });
}

function hugeBody(rng: Rng, params: CaseParams, path: string): FuzzCase {
  const size = params.maxBodyBytes + rng.int(1, 1024 * 1024);
  const body = Buffer.alloc(size, 0x61);
  body.write('{"prompt":"', 0);
  return {
    kind: 'huge-body',
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json' },
    body,
    raw: null,
    expectParam: null,
    abort: null,
    valid: false,
  };
}

/** The cases of a run: hostile ones with a valid one every `validEvery`. */
export function* fuzzCases(
  seed: number,
  count: number,
  validEvery: number,
  params: CaseParams,
): Generator<FuzzCase> {
  const rng = createRng(seed);
  for (let i = 0; i < count; i++) {
    yield i % validEvery === validEvery - 1 ? validCase(rng, params) : hostileCase(rng, params);
  }
}
