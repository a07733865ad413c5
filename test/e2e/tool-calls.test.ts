// Tool calling through the router with the official openai client, in both formats: Hermes
// <tool_call> tags (a tiny-qwen3 copy with a Hermes template) and Llama 3 JSON (a tiny-llama-bf16
// copy, byte-level like Llama 3, with a Llama 3.1-style template), one router serving both. tool_choice required and a
// named function are enforced by the constrained decoder, so the random-weight fixtures make real
// calls at temperature 1: every call names a given tool and its arguments validate against its
// schema; parallel calls happen and parallel_tool_calls false prevents them; streamed
// delta.tool_calls fragments add up to the non-streamed calls; the calls and their results go back
// as messages and the prompt is exactly the template's rendering of them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RouterApp } from '@tandem/router';
import { TextTokenizer } from '@tandem/tokenizer';
import { Ajv2020 } from 'ajv/dist/2020.js';
import OpenAI from 'openai';
import {
  fixturesDir,
  startBackplane,
  startRouter,
  startWorker,
  type WorkerProcess,
  waitFor,
} from './router-cluster.ts';
import { checkpointWithTemplate, hermesTemplate, llama3Template } from './tool-checkpoints.ts';

const ajv = new Ajv2020({ strict: false });

const tools: OpenAI.ChatCompletionFunctionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['celsius', 'fahrenheit'] } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
      strict: true,
    },
  },
  {
    type: 'function',
    function: {
      name: 'add',
      description: 'Adds two integers',
      parameters: {
        type: 'object',
        properties: {
          a: { type: 'integer', minimum: -99, maximum: 99 },
          b: { type: 'integer', minimum: 0, maximum: 9 },
        },
        required: ['a', 'b'],
        additionalProperties: false,
      },
    },
  },
  { type: 'function', function: { name: 'now', description: 'The time; no arguments' } },
];
const validators = new Map(
  tools.map((tool) => [
    tool.function.name,
    ajv.compile(tool.function.parameters ?? { type: 'object', properties: {}, additionalProperties: false }),
  ]),
);

interface Call {
  id: string;
  name: string;
  arguments: string;
}

interface Outcome {
  content: string | null;
  calls: Call[];
  finishReason: string | null;
}

describe('tool calls through the router', () => {
  let root: string;
  let formats: { name: string; model: string; dir: string }[];
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  let workers: WorkerProcess[] = [];
  let router: RouterApp;
  let client: OpenAI;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'tandem-tools-'));
    formats = [
      {
        name: 'hermes',
        model: 'qwen3-tools',
        dir: checkpointWithTemplate(join(fixturesDir, 'tiny-qwen3'), root, 'qwen3-tools', hermesTemplate),
      },
      {
        name: 'llama3_json',
        model: 'llama-tools',
        dir: checkpointWithTemplate(
          join(fixturesDir, 'tiny-llama-bf16'),
          root,
          'llama-tools',
          llama3Template,
        ),
      },
    ];
    backplane = await startBackplane();
    workers = await Promise.all(
      formats.map((format) =>
        startWorker({
          modelDir: format.dir,
          workerId: `tools-${format.name}`,
          natsUrl: backplane.nats.url,
          redisUrl: backplane.redis.url,
        }),
      ),
    );
    router = await startRouter(
      formats.map((format) => format.dir),
      backplane,
    );
    await waitFor('both models have their worker', () =>
      formats.every((format) => (router.route(format.model)?.registry.size ?? 0) === 1),
    );
    client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });

  after(async () => {
    await router?.close();
    await Promise.all(workers.map((worker) => worker.stop()));
    await backplane?.nats.stop();
    await backplane?.redis.stop();
    rmSync(root, { recursive: true, force: true });
  });

  /** One request, streamed (fragments assembled as a client does) or not. */
  async function call(
    body: OpenAI.ChatCompletionCreateParamsNonStreaming,
    stream: boolean,
  ): Promise<Outcome> {
    if (!stream) {
      const completion = await client.chat.completions.create(body);
      const choice = completion.choices[0];
      assert.ok(choice !== undefined);
      return {
        content: choice.message.content,
        calls: (choice.message.tool_calls ?? []).map((c) => {
          assert.equal(c.type, 'function');
          return { id: c.id, name: c.function.name, arguments: c.function.arguments };
        }),
        finishReason: choice.finish_reason,
      };
    }
    let content: string | null = null;
    const calls: Call[] = [];
    let finishReason: string | null = null;
    for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) {
      const choice = chunk.choices[0];
      if (choice === undefined) continue;
      if (typeof choice.delta.content === 'string' && choice.delta.content !== '')
        content = (content ?? '') + choice.delta.content;
      for (const fragment of choice.delta.tool_calls ?? []) {
        let entry = calls[fragment.index];
        if (entry === undefined) {
          // The first fragment of a call carries its id, type and name (as OpenAI streams them).
          assert.ok(
            fragment.id !== undefined && fragment.function?.name !== undefined,
            JSON.stringify(fragment),
          );
          assert.equal(fragment.type, 'function');
          entry = { id: fragment.id, name: fragment.function.name, arguments: '' };
          calls[fragment.index] = entry;
        }
        entry.arguments += fragment.function?.arguments ?? '';
      }
      finishReason = choice.finish_reason ?? finishReason;
    }
    return { content, calls, finishReason };
  }

  function assertValidCalls(outcome: Outcome, label: string): void {
    assert.equal(outcome.finishReason, 'tool_calls', `${label}: ${JSON.stringify(outcome)}`);
    assert.ok(outcome.calls.length >= 1, label);
    for (const c of outcome.calls) {
      const validate = validators.get(c.name);
      assert.ok(validate !== undefined, `${label}: unknown function ${c.name}`);
      assert.ok(
        validate(JSON.parse(c.arguments)),
        `${label}: ${c.arguments} ${ajv.errorsText(validate.errors)}`,
      );
      assert.match(c.id, /^call_[A-Za-z0-9_-]{24}$/);
    }
  }

  const request = (model: string, extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming>) => ({
    model,
    messages: [{ role: 'user' as const, content: 'What is the weather in Oslo, and what is 2 + 3?' }],
    tools,
    temperature: 1,
    max_tokens: 400,
    ...extra,
  });

  for (const format of ['hermes', 'llama3_json']) {
    test(`${format}: tool_choice required, streamed and not; streamed fragments add up to the same calls`, async () => {
      const { model } = formats.find((f) => f.name === format) ?? assert.fail();
      let parallelSeen = 0;
      for (let seed = 0; seed < 12; seed++) {
        const body = request(model, { tool_choice: 'required', seed });
        const whole = await call(body, false);
        const streamed = await call(body, true);
        assertValidCalls(whole, `${format} seed ${seed}`);
        assertValidCalls(streamed, `${format} seed ${seed} streamed`);
        const strip = (o: Outcome) => o.calls.map(({ name, arguments: args }) => ({ name, args }));
        assert.deepEqual(strip(streamed), strip(whole), `seed ${seed}`);
        assert.equal(whole.content, null);
        if (whole.calls.length > 1) parallelSeen++;
      }
      assert.ok(parallelSeen > 0, 'no seed made parallel calls');
      for (let seed = 0; seed < 6; seed++) {
        const single = await call(
          request(model, { tool_choice: 'required', parallel_tool_calls: false, seed }),
          seed % 2 === 1,
        );
        assertValidCalls(single, `${format} single seed ${seed}`);
        assert.equal(single.calls.length, 1);
      }
    });

    test(`${format}: a named function is called exactly once, streamed and not`, async () => {
      const { model } = formats.find((f) => f.name === format) ?? assert.fail();
      for (const name of ['add', 'now', 'get_weather']) {
        for (const stream of [false, true]) {
          const outcome = await call(
            request(model, { tool_choice: { type: 'function', function: { name } }, seed: 3 }),
            stream,
          );
          assertValidCalls(outcome, `${format} ${name}`);
          assert.deepEqual(
            outcome.calls.map((c) => c.name),
            [name],
          );
          if (name === 'now') assert.deepEqual(JSON.parse(outcome.calls[0]?.arguments ?? ''), {});
        }
      }
    });

    test(`${format}: calls and results go back as messages, rendered by the chat template`, async () => {
      const { model, dir } = formats.find((f) => f.name === format) ?? assert.fail();
      const first = await call(request(model, { tool_choice: 'required', seed: 1 }), false);
      assertValidCalls(first, format);
      const messages: OpenAI.ChatCompletionMessageParam[] = [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'What is the weather in Oslo, and what is 2 + 3?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: first.calls.map((c) => ({
            id: c.id,
            type: 'function' as const,
            function: { name: c.name, arguments: c.arguments },
          })),
        },
        ...first.calls.map((c, i) => ({ role: 'tool' as const, tool_call_id: c.id, content: `result ${i}` })),
      ];
      const answer = await client.chat.completions.create({
        model,
        messages,
        tools,
        temperature: 0,
        max_tokens: 8,
      });
      // The prompt the router built is the template's rendering: arguments as objects (as
      // transformers and vLLM pass them), the tools list, the tool results.
      const tokenizer = await TextTokenizer.load(dir);
      const expected = tokenizer.encodeChat(
        messages.map((m) => {
          if (m.role === 'assistant' && m.tool_calls !== undefined) {
            return {
              role: 'assistant',
              content: '',
              tool_calls: m.tool_calls.map((c) => {
                assert.equal(c.type, 'function');
                return {
                  id: c.id,
                  type: 'function',
                  function: { name: c.function.name, arguments: JSON.parse(c.function.arguments) },
                };
              }),
            };
          }
          return { ...m } as { role: string; content: unknown };
        }),
        { addGenerationPrompt: true, variables: { tools } },
      );
      assert.equal(answer.usage?.prompt_tokens, expected.length);
      const text = tokenizer.decode(expected, { skipSpecialTokens: false });
      assert.ok(text.includes('result 0'));
      assert.ok(text.includes(`"${first.calls[0]?.name}"`));
    });
  }

  test('tool_choice auto parses nothing from plain text; none ignores the tools; bad tool messages are 400s', async () => {
    for (const { model } of formats) {
      const auto = await call(request(model, { seed: 5, max_tokens: 16 }), false);
      assert.ok(auto.finishReason === 'stop' || auto.finishReason === 'length');
      const none = await call(request(model, { seed: 5, max_tokens: 16, tool_choice: 'none' }), true);
      assert.deepEqual(none.calls, []);
    }
    await assert.rejects(
      client.chat.completions.create({
        model: 'qwen3-tools',
        messages: [{ role: 'tool', content: 'x' } as unknown as OpenAI.ChatCompletionMessageParam],
      }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError && error.param === 'messages.0.tool_call_id',
    );
    await assert.rejects(
      client.chat.completions.create({
        model: 'qwen3-tools',
        messages: [{ role: 'user', content: 'x' }],
        tools,
        tool_choice: { type: 'function', function: { name: 'missing' } },
      }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError && error.param === 'tool_choice.function.name',
    );
    // A strict tool whose schema the decoder cannot enforce is a 400 naming it.
    await assert.rejects(
      client.chat.completions.create({
        model: 'qwen3-tools',
        messages: [{ role: 'user', content: 'x' }],
        tools: [
          {
            type: 'function',
            function: { name: 'f', parameters: { type: 'object', minProperties: 1 }, strict: true },
          },
        ],
        tool_choice: 'required',
      }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError &&
        error.param === 'tools.0.function.parameters.minProperties',
    );
    // The same schema on a non-strict tool: its arguments are any JSON object.
    const loose = await call(
      {
        model: 'qwen3-tools',
        messages: [{ role: 'user', content: 'x' }],
        tools: [
          { type: 'function', function: { name: 'f', parameters: { type: 'object', minProperties: 1 } } },
        ],
        tool_choice: 'required',
        temperature: 0,
        max_tokens: 300,
      },
      false,
    );
    assert.equal(loose.calls[0]?.name, 'f');
  });
});
