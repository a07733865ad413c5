// Structured outputs through the router with the official openai client: one router serving a
// byte-level fixture (tiny-qwen3), a Metaspace fixture (tiny-llama) and the demo model, one
// unified worker each. For every model, 34 JSON Schemas (strict) at temperature 1, streamed and
// not: every output ends with finish_reason stop and validates (ajv). Regex, choice, grammar and
// json_object constraints hold; bad constraints are 400s naming the field; unconstrained requests
// batched with constrained ones on the same worker still give their golden text.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RouterApp } from '@tandem/router';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import OpenAI from 'openai';
import {
  demoModelDir,
  fixturesDir,
  startBackplane,
  startRouter,
  startWorker,
  type WorkerProcess,
  waitFor,
} from './router-cluster.ts';
import { e2eSchemas } from './structured-schemas.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const ajv = addFormats(new Ajv2020({ strict: false }));
const extras = (body: Record<string, unknown>) => body as Record<string, never>;
/** A chat request with vLLM / SGLang extras the client's types do not know. */
const chatRequest = (body: Record<string, unknown>) =>
  body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming;

const models = [
  { name: 'tiny-qwen3', dir: join(fixturesDir, 'tiny-qwen3') },
  { name: 'tiny-llama', dir: join(fixturesDir, 'tiny-llama') },
  { name: 'tandem-demo-code', dir: demoModelDir },
];
const schemaEntries = Object.entries(e2eSchemas);

/** Runs `tasks` at most `limit` at a time. */
async function pool<T>(limit: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await (tasks[i] as () => Promise<T>)();
      }
    }),
  );
  return results;
}

describe('structured outputs through the router', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  let workers: WorkerProcess[] = [];
  let router: RouterApp;
  let client: OpenAI;

  before(async () => {
    backplane = await startBackplane();
    workers = await Promise.all(
      models.map((model) =>
        startWorker({
          modelDir: model.dir,
          workerId: `so-${model.name}`,
          natsUrl: backplane.nats.url,
          redisUrl: backplane.redis.url,
        }),
      ),
    );
    router = await startRouter(
      models.map((model) => model.dir),
      backplane,
    );
    await waitFor('every model has its worker', () =>
      models.every((model) => (router.route(model.name)?.registry.size ?? 0) === 1),
    );
    client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });

  after(async () => {
    await router?.close();
    await Promise.all(workers.map((worker) => worker.stop()));
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  /** One schema's output, streamed or not: its text and finish reason. */
  async function generate(
    model: string,
    schemaName: string,
    schema: Record<string, unknown>,
    stream: boolean,
    seed: number,
  ): Promise<{ text: string; finishReason: string | null }> {
    const body = {
      model,
      messages: [{ role: 'user' as const, content: `Give me ${schemaName} as JSON.` }],
      temperature: 1,
      seed,
      max_tokens: 900,
      response_format: {
        type: 'json_schema' as const,
        json_schema: { name: schemaName, schema, strict: true },
      },
    };
    if (!stream) {
      const completion = await client.chat.completions.create(body);
      const choice = completion.choices[0];
      return { text: choice?.message.content ?? '', finishReason: choice?.finish_reason ?? null };
    }
    let text = '';
    let finishReason: string | null = null;
    for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) {
      const choice = chunk.choices[0];
      text += choice?.delta.content ?? '';
      finishReason = choice?.finish_reason ?? finishReason;
    }
    return { text, finishReason };
  }

  for (const model of models) {
    test(`${model.name}: ${schemaEntries.length} strict schemas at temperature 1, streamed and not, all validate`, async () => {
      const tasks = schemaEntries.flatMap(([name, schema], i) =>
        [false, true].map((stream) => async () => {
          const out = await generate(model.name, name, schema, stream, 1000 + 2 * i + (stream ? 1 : 0));
          return { name, stream, schema, ...out };
        }),
      );
      const results = await pool(6, tasks);
      for (const { name, stream, schema, text, finishReason } of results) {
        const label = `${model.name} ${name}${stream ? ' (streamed)' : ''}: ${JSON.stringify(text)}`;
        assert.equal(finishReason, 'stop', label);
        const validate = ajv.compile(schema);
        assert.ok(validate(JSON.parse(text)), `${label} ${ajv.errorsText(validate.errors)}`);
      }
    });
  }

  test('regex, choice, grammar and json_object constraints hold, streamed and not', async () => {
    const cases: { body: Record<string, unknown>; check: (text: string) => void }[] = [
      {
        body: { guided_regex: '(yes|no), [0-9]{3}-[a-z]{2,5}' },
        check: (text) => assert.match(text, /^(yes|no), [0-9]{3}-[a-z]{2,5}$/),
      },
      {
        body: { structured_outputs: { regex: '[A-Z][a-z]{1,6}( [A-Z][a-z]{1,6}){0,2}' } },
        check: (text) => assert.match(text, /^[A-Z][a-z]{1,6}( [A-Z][a-z]{1,6}){0,2}$/),
      },
      {
        body: { guided_choice: ['positive', 'negative', 'neutral'] },
        check: (text) => assert.ok(['positive', 'negative', 'neutral'].includes(text), text),
      },
      {
        body: { structured_outputs: { choice: ['def', 'class', 'import os'] } },
        check: (text) => assert.ok(['def', 'class', 'import os'].includes(text), text),
      },
      {
        body: {
          guided_grammar: 'root ::= expr\nexpr ::= term (("+" | "-") term){0,3}\nterm ::= [1-9] [0-9]{0,2}',
        },
        check: (text) => assert.match(text, /^[1-9][0-9]{0,2}([+-][1-9][0-9]{0,2}){0,3}$/),
      },
    ];
    for (const model of models) {
      for (const [i, { body, check }] of cases.entries()) {
        for (const stream of [false, true]) {
          const request = chatRequest({
            model: model.name,
            messages: [{ role: 'user', content: 'answer' }],
            temperature: 1,
            seed: 7 + i,
            max_tokens: 200,
            ...body,
          });
          let text = '';
          let finishReason: string | null = null;
          if (stream) {
            for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) {
              text += chunk.choices[0]?.delta.content ?? '';
              finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
            }
          } else {
            const completion = await client.chat.completions.create(request);
            text = completion.choices[0]?.message.content ?? '';
            finishReason = completion.choices[0]?.finish_reason ?? null;
          }
          assert.equal(finishReason, 'stop', `${model.name} case ${i}: ${text}`);
          check(text);
        }
      }
    }
    // The completions endpoint takes the same fields; n choices each satisfy it.
    const completion = await client.completions.create({
      model: 'tiny-qwen3',
      prompt: 'The answer:',
      n: 3,
      temperature: 1,
      max_tokens: 50,
      ...extras({ guided_regex: '[0-9]{2}:[0-9]{2}' }),
    });
    assert.equal(completion.choices.length, 3);
    for (const choice of completion.choices) assert.match(choice.text, /^[0-9]{2}:[0-9]{2}$/);
    // json_object on the trained demo model: a JSON object that parses.
    const object = await client.chat.completions.create({
      model: 'tandem-demo-code',
      messages: [{ role: 'user', content: 'config as JSON' }],
      temperature: 1,
      seed: 3,
      max_tokens: 1500,
      response_format: { type: 'json_object' },
    });
    assert.equal(object.choices[0]?.finish_reason, 'stop', object.choices[0]?.message.content ?? '');
    const parsed = JSON.parse(object.choices[0]?.message.content ?? '') as unknown;
    assert.ok(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed));
  });

  test('a constraint that cannot compile is a 400 naming the field under it', async () => {
    const messages = [{ role: 'user' as const, content: 'x' }];
    const cases: [Record<string, unknown>, string, string][] = [
      [
        {
          response_format: {
            type: 'json_schema',
            json_schema: {
              name: 'bad',
              schema: { type: 'object', properties: { age: { type: 'integer', minimum: 'x' } } },
            },
          },
        },
        'response_format.json_schema.schema.properties.age.minimum',
        'invalid_json_schema',
      ],
      [
        {
          response_format: {
            type: 'json_schema',
            json_schema: { name: 'bad', schema: { type: 'object', patternProperties: {} } },
          },
        },
        'response_format.json_schema.schema.patternProperties',
        'unsupported_json_schema',
      ],
      [{ guided_regex: 'a(b' }, 'guided_regex', 'invalid_regex'],
      [{ guided_grammar: 'root ::= missing' }, 'guided_grammar', 'invalid_grammar'],
      [
        { guided_json: { type: 'integer', minimum: 5, maximum: 1 } },
        'guided_json.maximum',
        'unsatisfiable_constraint',
      ],
    ];
    for (const [body, param, code] of cases) {
      try {
        await client.chat.completions.create(chatRequest({ model: 'tiny-qwen3', messages, ...body }));
        assert.fail(`expected a 400 for ${JSON.stringify(body)}`);
      } catch (error) {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.equal(error.param, param);
        assert.equal(error.code, code);
      }
    }
  });

  test('unconstrained requests batched with constrained ones keep their golden text', async () => {
    const dir = join(fixturesDir, 'tiny-qwen3');
    const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as {
      text_cases: { prompt: string; greedy_text: string }[];
    };
    const plain = golden.text_cases.map((c) =>
      client.completions.create({
        model: 'tiny-qwen3',
        prompt: c.prompt,
        temperature: 0,
        max_tokens: 24,
        ...extras({ ignore_eos: true }),
      }),
    );
    const constrained = schemaEntries
      .slice(0, 12)
      .map(([name, schema], i) => generate('tiny-qwen3', name, schema, i % 2 === 1, 5000 + i));
    const [plainOut, constrainedOut] = await Promise.all([Promise.all(plain), Promise.all(constrained)]);
    for (const [i, completion] of plainOut.entries()) {
      assert.equal(completion.choices[0]?.text, golden.text_cases[i]?.greedy_text);
    }
    for (const out of constrainedOut) {
      assert.equal(out.finishReason, 'stop');
      JSON.parse(out.text);
    }
  });
});
