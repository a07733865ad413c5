// Constrained decoding in the engine with the real CPU executor and real compiled grammars
// (@tandem/structured): every output satisfies its constraint and ends on EOS; unconstrained
// requests batched with constrained ones decode exactly as alone (greedy golden); each of n
// choices has its own matcher; preemption (a tiny pool) keeps the matcher's position.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { fixture } from '@tandem/common/testing';
import { defaultSampling } from '@tandem/executor';
import { type CompiledGrammar, GrammarCompiler, Vocabulary } from '@tandem/structured';
import { TextTokenizer } from '@tandem/tokenizer';
import { Engine } from '../src/engine.ts';
import { collect, request } from './helpers.ts';

const f = fixture('tiny-qwen3');
const stochastic = (seed: number) => ({ ...defaultSampling(), temperature: 1, seed });

describe('constrained decoding in the engine', () => {
  let tokenizer: TextTokenizer;
  let compiler: GrammarCompiler;
  let eos: number;
  let person: CompiledGrammar;
  let regex: CompiledGrammar;
  before(async () => {
    tokenizer = await TextTokenizer.load(f.dir);
    const vocabulary = await Vocabulary.load(f.dir);
    eos = vocabulary.eosTokenIds[0] as number;
    compiler = new GrammarCompiler(vocabulary);
    person = compiler.compile({
      type: 'json_schema',
      schema: {
        type: 'object',
        properties: {
          name: { type: 'string', maxLength: 8 },
          age: { type: 'integer', minimum: 0, maximum: 120 },
          tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 2 },
        },
        required: ['name', 'age'],
        additionalProperties: false,
      },
    });
    regex = compiler.compile({ type: 'regex', pattern: '(yes|no)-[0-9]{2,4}' });
  });

  /** The output's text (EOS, the last token, left out) after checking it ended on EOS. */
  function textOf(tokenIds: number[], finishReason: string | null): string {
    assert.equal(finishReason, 'stop');
    assert.equal(tokenIds.at(-1), eos);
    return tokenizer.decode(tokenIds.slice(0, -1), { skipSpecialTokens: false });
  }

  test('outputs satisfy their constraints at temperature 1; unconstrained ones in the batch are unchanged', async () => {
    const engine = await Engine.create({
      executor: { modelDir: f.dir, pageSize: 16, numPages: 128, numThreads: 2 },
      scheduler: { maxPrefillChunkTokens: 16 },
    });
    try {
      const golden = f.golden.text_cases.slice(0, 3).map((c) => ({
        prompt: tokenizer.encode(c.prompt),
        greedyIds: c.greedy_ids,
      }));
      const plain = golden.map((c, i) =>
        collect(engine.generate(request(`plain${i}`, c.prompt, c.greedyIds.length))),
      );
      const constrained = Array.from({ length: 8 }, (_, i) =>
        collect(
          engine.generate(
            request(`json${i}`, golden[i % golden.length]!.prompt, 200, {
              sampling: stochastic(100 + i),
              constraint: i % 2 === 0 ? person : regex,
              ignoreEos: false,
            }),
          ),
        ),
      );
      const [plainOut, constrainedOut] = await Promise.all([Promise.all(plain), Promise.all(constrained)]);
      for (const [i, [choice]] of plainOut.entries())
        assert.deepEqual(choice?.tokenIds, golden[i]!.greedyIds);
      constrainedOut.forEach(([choice], i) => {
        const text = textOf(choice!.tokenIds, choice!.finishReason);
        if (i % 2 === 0) {
          const value = JSON.parse(text) as { name: string; age: number; tags?: string[] };
          assert.ok(typeof value.name === 'string' && [...value.name].length <= 8, text);
          assert.ok(Number.isInteger(value.age) && value.age >= 0 && value.age <= 120, text);
          assert.ok(
            (value.tags ?? []).every((t) => t === 'a' || t === 'b'),
            text,
          );
        } else {
          assert.match(text, /^(yes|no)-[0-9]{2,4}$/);
        }
      });
      engine.checkInvariants();
    } finally {
      await engine.close();
    }
  });

  test('n choices each follow the constraint with their own matcher, through preemption', async () => {
    // 8 pages of 4 tokens for 3 choices: decode runs out of pages and preempts.
    const engine = await Engine.create({
      executor: { modelDir: f.dir, pageSize: 4, numPages: 8, numThreads: 2 },
      scheduler: { decodeReserveTokens: 0 },
    });
    try {
      const long = compiler.compile({ type: 'regex', pattern: '(alpha|delta)-[a-z]{30,36}' });
      const [choices, regexChoices] = await Promise.all([
        collect(
          engine.generate(
            request('n3', tokenizer.encode('pick one'), 40, {
              n: 3,
              sampling: stochastic(7),
              constraint: long,
              ignoreEos: true, // ignored once the constraint is complete
            }),
          ),
        ),
        collect(
          engine.generate(
            request('r', tokenizer.encode('again'), 40, { sampling: stochastic(9), constraint: regex }),
          ),
        ),
      ]);
      assert.equal(choices.length, 3);
      for (const c of choices) {
        assert.match(textOf(c.tokenIds, c.finishReason), /^(alpha|delta)-[a-z]{30,36}$/);
      }
      assert.match(textOf(regexChoices[0]!.tokenIds, regexChoices[0]!.finishReason), /^(yes|no)-[0-9]{2,4}$/);
      assert.ok(
        engine.stats().numPreemptions > 0,
        `the pool was meant to force preemption: ${JSON.stringify(choices.map((c) => c.tokenIds.length))}`,
      );
      engine.checkInvariants();
    } finally {
      await engine.close();
    }
  });

  test('a constraint whose masks do not cover the vocabulary is refused before queueing', async () => {
    const engine = await Engine.create({
      executor: { modelDir: f.dir, pageSize: 16, numPages: 8, numThreads: 1 },
    });
    try {
      const narrow = { maskWords: 1, newMatcher: () => person.newMatcher() };
      assert.throws(
        () => engine.generate(request('x', [5, 6], 4, { constraint: narrow })),
        /do not cover the 640-token vocabulary/,
      );
    } finally {
      await engine.close();
    }
  });
});
