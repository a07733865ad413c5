// Request features over real gRPC against a real worker process: logprobs against the reference's
// teacher-forced log-probabilities, top logprobs, n > 1, stop token ids, min_tokens, seeded
// sampling, prefix-cache reuse reported as cached tokens, and draining on SIGTERM.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGrpcClient, type GrpcClient, UnavailableError } from '@tandem/common';
import { fixture, fixtureDir } from '@tandem/common/testing';
import { FinishReason, type GenerateResponse, ServingStatus, Worker } from '@tandem/proto';
import { generate, greedyRequest, startWorkerProcess, type WorkerProcess } from '@tandem/worker/testing';

const golden = fixture('tiny-llama').golden;
const goldenCase = golden.cases!.find((c) => c.prompt_ids.length === 16)! as {
  prompt_ids: number[];
  greedy_ids: number[];
  sequence_logprobs: number[];
};

describe('request features over gRPC', () => {
  let worker: WorkerProcess;
  let client: GrpcClient<typeof Worker>;

  before(async () => {
    worker = await startWorkerProcess([
      '--model',
      fixtureDir('tiny-llama'),
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
    if (worker !== undefined && worker.child.exitCode === null) await worker.stop();
  });

  test('logprobs match the reference, top logprobs lead with the greedy token, n = 2 agree', async () => {
    const prompt = goldenCase.prompt_ids;
    const responses: GenerateResponse[] = [];
    for await (const response of client.generate({
      ...greedyRequest('logprobs-1', prompt),
      n: 2,
      logprobs: true,
      topLogprobs: 3,
    })) {
      responses.push(response);
    }
    for (const index of [0, 1]) {
      const deltas = responses.flatMap((r) => r.choices).filter((c) => c.index === index);
      const tokenIds = deltas.flatMap((d) => d.tokenIds);
      const logprobs = deltas.flatMap((d) => d.logprobs);
      const top = deltas.flatMap((d) => d.topLogprobs);
      assert.deepEqual(tokenIds, goldenCase.greedy_ids, `choice ${index}`);
      assert.equal(logprobs.length, tokenIds.length);
      assert.equal(top.length, tokenIds.length);
      for (const [i, logprob] of logprobs.entries()) {
        const reference = goldenCase.sequence_logprobs[prompt.length - 1 + i]!;
        assert.ok(Math.abs(logprob - reference) < 1e-4, `step ${i}: ${logprob} vs ${reference}`);
        assert.equal(top[i]!.entries.length, 3);
        assert.equal(top[i]!.entries[0]!.tokenId, tokenIds[i]);
        assert.ok(Math.abs(top[i]!.entries[0]!.logprob - logprob) < 1e-6);
        assert.ok(top[i]!.entries[1]!.logprob <= top[i]!.entries[0]!.logprob);
      }
      assert.equal(deltas.at(-1)?.finishReason, FinishReason.LENGTH);
    }
  });

  test('a stop token id ends the choice with STOP, respecting min_tokens', async () => {
    const prompt = goldenCase.prompt_ids;
    const greedy = goldenCase.greedy_ids;
    const stopId = greedy[1]!; // 307, which greedy decoding also produces again later
    const [stopped] = await generate(client, { ...greedyRequest('stop-1', prompt), stopTokenIds: [stopId] });
    assert.equal(stopped?.finishReason, FinishReason.STOP);
    assert.deepEqual(stopped.tokenIds, greedy.slice(0, 2));
    // Stops count from the min_tokens-th token on: the first stop id at index >= 3 ends it.
    const later = greedy.indexOf(stopId, 3);
    const [delayed] = await generate(client, {
      ...greedyRequest('stop-2', prompt),
      stopTokenIds: [stopId],
      minTokens: 4,
    });
    assert.equal(delayed?.finishReason, FinishReason.STOP);
    assert.deepEqual(delayed.tokenIds, greedy.slice(0, later + 1));
  });

  test('the same seed gives the same sample, another seed (almost surely) another', async () => {
    const sampled = (id: string, seed: bigint) =>
      generate(client, {
        ...greedyRequest(id, goldenCase.prompt_ids, 16),
        sampling: { temperature: 1.5, seed },
      });
    const [a] = await sampled('seed-a', 1234n);
    const [b] = await sampled('seed-b', 1234n);
    const [c] = await sampled('seed-c', 98765n);
    assert.deepEqual(a?.tokenIds, b?.tokenIds);
    assert.notDeepEqual(a?.tokenIds, c?.tokenIds);
    assert.notDeepEqual(a?.tokenIds, goldenCase.greedy_ids.slice(0, 16));
  });

  test('a repeated prompt is served from the prefix cache and reports cached tokens', async () => {
    const prompt = Array.from({ length: 70 }, (_, i) => 3 + ((i * 37) % 480));
    const [first] = await generate(client, greedyRequest('cache-1', prompt, 4));
    const [second] = await generate(client, greedyRequest('cache-2', prompt, 4));
    assert.equal(first?.numCachedTokens, 0);
    const info = await client.info({});
    const pageSize = info.kvLayout!.pageSize;
    assert.equal(second?.numPromptTokens, 70);
    // Every full page of the prompt except a last one the engine must recompute to sample from.
    assert.ok(
      second!.numCachedTokens >= Math.floor((70 - 1) / pageSize) * pageSize,
      `${second?.numCachedTokens}`,
    );
    assert.ok(second!.numCachedTokens < 70);
    assert.deepEqual(second.tokenIds, first!.tokenIds);
  });

  test('SIGTERM drains: the running request finishes, new ones are refused, exit code 0', async () => {
    const running = generate(client, greedyRequest('drain-1', goldenCase.prompt_ids, 3000));
    const deadline = Date.now() + 5000;
    while ((await client.info({})).load!.numRunning === 0 && Date.now() < deadline) await sleep(5);
    worker.child.kill('SIGTERM');
    let health = await client.health({});
    while (health.status !== ServingStatus.DRAINING && Date.now() < deadline) {
      await sleep(5);
      health = await client.health({});
    }
    assert.equal(health.status, ServingStatus.DRAINING);
    await assert.rejects(generate(client, greedyRequest('drain-2', [1, 2, 3], 4)), UnavailableError);
    const [choice] = await running;
    assert.equal(choice?.finishReason, FinishReason.LENGTH);
    assert.equal(choice.tokenIds.length, 3000);
    assert.equal(await worker.stop(), 0);
  });
});
