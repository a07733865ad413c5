// Compiling on a worker thread: grammars restored on this thread give exactly the masks of a
// grammar compiled here, step by step (rests interned across several transfers included);
// check() and compile() refuse bad specs with the same classes and params; grammars with JSON
// Schema rules (tool calls) generate what they say.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ConstraintSpec, GrammarCompiler } from '../src/compiler.ts';
import { CompilerThread } from '../src/compiler-thread.ts';
import {
  InvalidGrammarError,
  InvalidRegexError,
  InvalidSchemaError,
  UnsupportedSchemaError,
} from '../src/errors.ts';
import { bitmaskToIds } from '../src/matcher.ts';
import { schemaSuite } from '../src/testing/index.ts';
import { checkpointDirs, loadVocabulary, randomWalk, seededRandom } from './helpers.ts';

const toolGrammar: ConstraintSpec = {
  type: 'grammar',
  grammar:
    'root ::= call ("\\n" call)*\n' +
    'call ::= "<tool_call>\\n{\\"name\\": \\"get_weather\\", \\"arguments\\": " weather "}\\n</tool_call>"' +
    ' | "<tool_call>\\n{\\"name\\": \\"add\\", \\"arguments\\": " add "}\\n</tool_call>"',
  schemas: {
    weather: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['c', 'f'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
    add: {
      type: 'object',
      properties: { a: { type: 'integer' }, b: { $ref: '#/$defs/n' } },
      required: ['a', 'b'],
      additionalProperties: false,
      $defs: { n: { type: 'integer', minimum: 0, maximum: 9 } },
    },
  },
  schemaParams: { add: 'tools.1.function.parameters' },
  param: 'tool_choice',
};

describe('CompilerThread', () => {
  let thread: CompilerThread;
  before(async () => {
    thread = await CompilerThread.start(checkpointDirs.tinyQwen3);
  });
  after(async () => {
    await thread.close();
  });

  it('restored grammars give the masks of grammars compiled on this thread, at every step', async () => {
    const vocabulary = await loadVocabulary('tinyQwen3');
    const local = new GrammarCompiler(vocabulary);
    const specs: ConstraintSpec[] = [
      ...Object.values(schemaSuite)
        .slice(0, 12)
        .map((schema): ConstraintSpec => ({ type: 'json_schema', schema })),
      { type: 'json_object' },
      { type: 'regex', pattern: '[a-z]{2,5}@(x|yz)\\.com' },
      { type: 'choice', choices: ['yes', 'no', 'maybe'] },
      toolGrammar,
    ];
    const words = Math.ceil(vocabulary.size / 32);
    const maskA = new Uint32Array(words);
    const maskB = new Uint32Array(words);
    // Several in flight at once: transfers arrive in order and each adopts the rests before it.
    const restored = await Promise.all(specs.map((spec) => thread.compile(spec)));
    const random = seededRandom(5);
    for (const [i, spec] of specs.entries()) {
      const here = local.compile(spec).newMatcher();
      const there = (restored[i] ?? assert.fail()).newMatcher();
      for (let step = 0; step < 200 && !here.isCompleted(); step++) {
        const count = here.fillNextTokenBitmask(maskA);
        assert.equal(there.fillNextTokenBitmask(maskB), count, `${spec.type} #${i} step ${step}`);
        assert.deepEqual(maskB, maskA, `${spec.type} #${i} step ${step}`);
        const allowed = bitmaskToIds(maskA, count);
        // Free choice for a while, then the shortest way out.
        let pick = allowed[Math.floor(random() * allowed.length)] as number;
        if (step > 60) {
          const eos = vocabulary.eosTokenIds[0] as number;
          pick = here.canTerminate() ? eos : pick;
          let best = Number.MAX_SAFE_INTEGER;
          if (!here.canTerminate()) {
            for (const id of allowed.slice(0, 48)) {
              const probe = here.clone();
              probe.acceptToken(id);
              if (probe.bytesToFinish() < best) [best, pick] = [probe.bytesToFinish(), id];
            }
          }
        }
        assert.ok(here.acceptToken(pick));
        assert.ok(there.acceptToken(pick));
      }
    }
  });

  it('compile() is cached per spec; a restored grammar serves many matchers', async () => {
    const spec: ConstraintSpec = { type: 'choice', choices: ['a', 'b'] };
    assert.equal(await thread.compile(spec), await thread.compile({ ...spec }));
  });

  it('check() and compile() refuse with the same classes and params', async () => {
    const cases: [ConstraintSpec, new (...args: never[]) => Error, string][] = [
      [
        { type: 'json_schema', schema: { type: 'integer', minimum: 'x' } },
        InvalidSchemaError,
        'response_format.json_schema.schema.minimum',
      ],
      [
        { type: 'json_schema', schema: { not: {} } },
        UnsupportedSchemaError,
        'response_format.json_schema.schema.not',
      ],
      [{ type: 'regex', pattern: 'a(b', param: 'guided_regex' }, InvalidRegexError, 'guided_regex'],
      [{ type: 'grammar', grammar: 'root ::= x' }, InvalidGrammarError, 'grammar'],
      [
        {
          ...toolGrammar,
          schemas: {
            ...(toolGrammar.type === 'grammar' ? toolGrammar.schemas : {}),
            add: { type: 'object', minProperties: 1 },
          },
        },
        UnsupportedSchemaError,
        'tools.1.function.parameters.minProperties',
      ],
    ];
    for (const [spec, errorClass, param] of cases) {
      for (const call of [thread.check(spec), thread.compile(spec)]) {
        await assert.rejects(call, (error: unknown) => {
          assert.ok(error instanceof errorClass, String(error));
          assert.equal((error as unknown as { param: string }).param, param);
          return true;
        });
      }
    }
    await thread.check({ type: 'json_object' });
  });

  it('a grammar with schema rules generates calls whose arguments validate', async () => {
    const vocabulary = await loadVocabulary('tinyQwen3');
    const grammar = await thread.compile(toolGrammar);
    const random = seededRandom(11);
    for (let walk = 0; walk < 6; walk++) {
      const result = randomWalk(grammar.newMatcher(), vocabulary, random, { freeSteps: 30 });
      assert.ok(result.completed);
      const calls = result.text.split('\n</tool_call>').filter((part) => part.trim() !== '');
      assert.ok(calls.length >= 1);
      for (const part of calls) {
        const body = part.replace(/^\n?<tool_call>\n/, '');
        const call = JSON.parse(body) as { name: string; arguments: Record<string, unknown> };
        if (call.name === 'get_weather') {
          assert.deepEqual(Object.keys(call.arguments), ['city', 'unit']);
          assert.ok(['c', 'f'].includes(call.arguments.unit as string));
        } else {
          assert.equal(call.name, 'add');
          const b = call.arguments.b as number;
          assert.ok(Number.isInteger(call.arguments.a) && Number.isInteger(b) && b >= 0 && b <= 9);
        }
      }
    }
  });
});
