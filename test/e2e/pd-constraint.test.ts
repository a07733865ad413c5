// Constrained decoding across a prefill / decode pair (in process, real gRPC and kvtransfer): the
// prefill worker samples the first token under the constraint's mask and the decode worker's
// matcher accepts it, so outputs satisfy the constraint while the prompt goes through P. Without
// the constraint on P's side, P's free first token is refused by D's matcher and the choice
// aborts (the check that would catch a prefill worker ignoring the mask).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Logger } from '@tandem/common';
import { create, OutputConstraintSchema, SamplingParamsSchema } from '@tandem/proto';
import { TextTokenizer } from '@tandem/tokenizer';
import { OutputConstraints } from '@tandem/worker';
import { generate, greedyRequest, type PdPair, pdFixture, startPdPair } from './pd-helpers.ts';

const fixture = pdFixture('tiny-qwen3');
const logger = new Logger({ level: 'warn', fields: { service: 'pd-constraint-test' } });

describe('constrained decoding through a prefill worker', () => {
  let pd: PdPair;
  let decodeConstraints: OutputConstraints;
  let prefillConstraints: OutputConstraints;
  let tokenizer: TextTokenizer;
  before(async () => {
    prefillConstraints = OutputConstraints.start(fixture.dir, 640, logger);
    decodeConstraints = OutputConstraints.start(fixture.dir, 640, logger);
    pd = await startPdPair(fixture.dir, 'tiny-qwen3', 128, prefillConstraints);
    tokenizer = await TextTokenizer.load(fixture.dir);
  });
  after(async () => {
    await pd?.close();
    await prefillConstraints?.close();
    await decodeConstraints?.close();
  });

  const wire = create(OutputConstraintSchema, {
    param: 'guided_choice',
    kind: { case: 'choice', value: { choices: ['zebra crossing', 'yak', 'quokka smile'] } },
  });

  async function run(id: string, seed: number, constraintForP: boolean) {
    const sampling = create(SamplingParamsSchema, { temperature: 1, seed: BigInt(seed) });
    const request = {
      ...greedyRequest(id, fixture.cases[0]?.prompt_ids ?? [], 40),
      sampling: { ...greedyRequest(id, []).sampling, temperature: 1, seed },
      ignoreEos: false,
      constraint: await decodeConstraints.compile(wire),
    };
    const hooks = pd.host.hooksFor(
      request,
      { type: 'remote', addresses: [pd.prefillAddress] },
      { sampling, topLogprobs: 0, ...(constraintForP ? { constraint: wire } : {}) },
    );
    const before = pd.host.stats.numRemotePrefills;
    let finishReason: string | null = null;
    const tokenIds: number[] = [];
    for await (const chunk of pd.decode.generate(request, undefined, hooks)) {
      tokenIds.push(...chunk.tokenIds);
      finishReason = chunk.finishReason ?? finishReason;
    }
    return { tokenIds, finishReason, remote: pd.host.stats.numRemotePrefills - before };
  }

  test('P samples the first token under the mask; every output is one of the choices', async () => {
    for (let seed = 0; seed < 8; seed++) {
      const out = await run(`c${seed}`, seed, true);
      assert.equal(out.remote, 1, 'the prompt went through the prefill worker');
      assert.equal(out.finishReason, 'stop');
      const text = tokenizer.decode(out.tokenIds.slice(0, -1), { skipSpecialTokens: false });
      assert.ok(['zebra crossing', 'yak', 'quokka smile'].includes(text), text);
    }
  });

  test("without the constraint on P, D's matcher refuses P's first token", async () => {
    let aborted = 0;
    for (let seed = 0; seed < 4; seed++) {
      const out = await run(`u${seed}`, seed, false);
      if (out.finishReason === 'abort') aborted++;
    }
    assert.ok(aborted > 0, 'a first token outside the mask was accepted');
    // Local prefill (no hook) under the same constraint still works after that.
    const local = await generate(pd.decode, {
      ...greedyRequest('local', fixture.cases[1]?.prompt_ids ?? [], 40),
      ignoreEos: false,
      constraint: await decodeConstraints.compile(wire),
    });
    const text = tokenizer.decode(local.tokenIds.slice(0, -1), { skipSpecialTokens: false });
    assert.ok(['zebra crossing', 'yak', 'quokka smile'].includes(text), text);
  });
});
