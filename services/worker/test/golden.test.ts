// Every fixture's golden cases through a real worker process (spawned via the CLI) over real gRPC,
// with the runtime's tokenizer and incremental detokenizer on the client side: temperature 0, 24
// tokens (48 for the demo checkpoint), EOS ignored must give exactly the reference's greedy ids and
// greedy_text. The requests of one model run concurrently, so they are batched together.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createGrpcClient, type GrpcClient } from '@tandem/common';
import { demoModelDir, fixture, fixtureNames } from '@tandem/common/testing';
import { FinishReason, Worker } from '@tandem/proto';
import { IncrementalDetokenizer, TextTokenizer } from '@tandem/tokenizer';
import { greedyRequest, startWorkerProcess, type WorkerProcess } from '@tandem/worker/testing';

interface TextCase {
  id: string;
  promptIds: number[];
  greedyIds: number[];
  greedyText: string | null;
}

/** Streams the request, detokenizing each delta as it arrives (as the router does). */
async function streamText(
  client: GrpcClient<typeof Worker>,
  tokenizer: TextTokenizer,
  id: string,
  promptIds: number[],
  maxTokens: number,
) {
  const detokenizer = new IncrementalDetokenizer(tokenizer);
  const tokenIds: number[] = [];
  let text = '';
  let finishReason = FinishReason.UNSPECIFIED;
  for await (const response of client.generate(greedyRequest(id, promptIds, maxTokens))) {
    for (const delta of response.choices) {
      assert.equal(delta.index, 0);
      tokenIds.push(...delta.tokenIds);
      const piece = detokenizer.push(delta.tokenIds);
      assert.ok(!piece.endsWith('\uFFFD') || delta.finishReason !== FinishReason.UNSPECIFIED);
      text += piece;
      if (delta.finishReason !== FinishReason.UNSPECIFIED) finishReason = delta.finishReason;
    }
  }
  text += detokenizer.flush();
  return { tokenIds, text, finishReason };
}

const models = [
  ...fixtureNames.map((name) => ({ name, dir: fixture(name).dir, maxTokens: 24 })),
  { name: 'tandem-demo-code', dir: demoModelDir, maxTokens: 48 },
];

for (const model of models) {
  describe(`golden ${model.name} over gRPC`, () => {
    const golden = fixture(model.name).golden;
    let worker: WorkerProcess;
    let client: GrpcClient<typeof Worker>;
    let tokenizer: TextTokenizer;

    before(async () => {
      tokenizer = await TextTokenizer.load(model.dir);
      worker = await startWorkerProcess([
        '--model',
        model.dir,
        '--nats',
        'none',
        '--redis',
        'none',
        '--threads',
        '2',
      ]);
      client = createGrpcClient(Worker, worker.grpcAddress);
    });

    after(async () => {
      client?.close();
      assert.equal(await worker?.stop(), 0);
    });

    test('Info reports the model and its KV layout', async () => {
      const info = await client.info({});
      assert.equal(info.modelName, model.name);
      assert.equal(info.workerId, worker.workerId);
      assert.ok(info.kvLayout !== undefined && info.kvLayout.numPages > 0 && info.kvLayout.pageSize > 0);
      assert.equal(info.load?.numTotalPages, info.kvLayout.numPages);
    });

    test('text and chat cases: tokenize, generate, detokenize give exactly greedy_text', async () => {
      const cases: TextCase[] = [];
      for (const [i, c] of golden.text_cases.entries()) {
        const promptIds = tokenizer.encode(c.prompt);
        assert.deepEqual(promptIds, c.prompt_ids, `text-${i} tokenization`);
        cases.push({ id: `text-${i}`, promptIds, greedyIds: c.greedy_ids, greedyText: c.greedy_text });
      }
      for (const [i, c] of (golden.chat_cases ?? []).entries()) {
        const promptIds = tokenizer.encodeChat(c.messages, { addGenerationPrompt: true });
        assert.deepEqual(promptIds, c.prompt_ids, `chat-${i} template + tokenization`);
        cases.push({ id: `chat-${i}`, promptIds, greedyIds: c.greedy_ids, greedyText: c.greedy_text });
      }
      const results = await Promise.all(
        cases.map((c) => streamText(client, tokenizer, c.id, c.promptIds, model.maxTokens)),
      );
      for (const [i, c] of cases.entries()) {
        const result = results[i]!;
        assert.equal(result.finishReason, FinishReason.LENGTH);
        assert.deepEqual(result.tokenIds, c.greedyIds, `${model.name} ${c.id} ids`);
        assert.equal(result.text, c.greedyText, `${model.name} ${c.id} text`);
      }
    });

    // The demo checkpoint's golden file has text cases only.
    const idCases = golden.cases;
    if (idCases !== undefined) {
      test('prompt-id cases give the greedy ids', async () => {
        // golden.json's `cases` come from a transformers model cast to its stored dtype, which rounds
        // RoPE inv_freq (a no-op for float32 checkpoints): the worker reproduces it on request.
        const casesWorker = await startWorkerProcess([
          ...['--model', model.dir, '--nats', 'none', '--redis', 'none', '--threads', '2'],
          ...['--rope-frequency-rounding', 'stored-dtype'],
        ]);
        const casesClient = createGrpcClient(Worker, casesWorker.grpcAddress);
        const cases = idCases;
        const results = await Promise.all(
          cases.map((c, i) => streamText(casesClient, tokenizer, `case-${i}`, c.prompt_ids, model.maxTokens)),
        );
        casesClient.close();
        assert.equal(await casesWorker.stop(), 0);
        for (const [i, c] of cases.entries()) {
          assert.deepEqual(
            results[i]!.tokenIds,
            c.greedy_ids,
            `${model.name} case ${i} (${c.prompt_ids.length} tokens)`,
          );
        }
      });
    }
  });
}
