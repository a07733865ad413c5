// Cancellation over real gRPC against a real worker process: a client abort, a client that
// disconnects, and the Cancel RPC each end the request and give every page back (free plus
// evictable pages equal the pool, nothing running). Bad requests come back as typed errors.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AlreadyExistsError,
  CancelledError,
  createGrpcClient,
  type GrpcClient,
  InvalidArgumentError,
  UnimplementedError,
} from '@tandem/common';
import { fixtureDir } from '@tandem/common/testing';
import { FinishReason, Worker } from '@tandem/proto';
import { generate, greedyRequest, startWorkerProcess, type WorkerProcess } from '@tandem/worker/testing';

const longPrompt = Array.from({ length: 40 }, (_, i) => (i * 7 + 3) % 500);

async function waitUntilIdle(client: GrpcClient<typeof Worker>) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const load = (await client.info({})).load!;
    if (load.numRunning === 0 && load.numWaiting === 0) return load;
    if (Date.now() > deadline) assert.fail(`worker still busy: ${JSON.stringify(load)}`);
    await sleep(20);
  }
}

function assertAllPagesBack(load: {
  numFreePages: number;
  numEvictablePages: number;
  numTotalPages: number;
}) {
  assert.equal(load.numFreePages + load.numEvictablePages, load.numTotalPages, JSON.stringify(load));
}

describe('cancellation over gRPC', () => {
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
      '--page-size',
      '4',
      '--num-pages',
      '96',
      '--threads',
      '1',
    ]);
    client = createGrpcClient(Worker, worker.grpcAddress);
  });

  after(async () => {
    client?.close();
    assert.equal(await worker?.stop(), 0);
  });

  test('an aborted stream frees its pages', async () => {
    const controller = new AbortController();
    let numMessages = 0;
    await assert.rejects(async () => {
      for await (const _ of client.generate(
        { ...greedyRequest('abort-1', longPrompt, 300), n: 2 },
        { signal: controller.signal },
      )) {
        if (++numMessages === 3) controller.abort();
      }
    }, CancelledError);
    assertAllPagesBack(await waitUntilIdle(client));
  });

  test('a client process killed mid-stream frees its pages', async () => {
    const script = new URL('./stream-client.ts', import.meta.url).pathname;
    const child = spawn(
      process.execPath,
      [script, worker.grpcAddress, 'killed-client-1', longPrompt.join(',')],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      assert.equal(line, 'started');
      const busy = (await client.info({})).load!;
      assert.equal(busy.numRunning, 1);
      assert.ok(busy.numFreePages + busy.numEvictablePages < busy.numTotalPages);
    } finally {
      child.kill('SIGKILL');
    }
    assertAllPagesBack(await waitUntilIdle(client));
  });

  test('Cancel ends the stream with finish reason abort and frees its pages', async () => {
    const running = generate(client, greedyRequest('cancel-rpc-1', longPrompt, 2000));
    // Wait until the worker runs it.
    const deadline = Date.now() + 5000;
    while ((await client.info({})).load!.numRunning === 0 && Date.now() < deadline) await sleep(5);
    assert.equal((await client.cancel({ requestId: 'cancel-rpc-1' })).found, true);
    const [choice] = await running;
    assert.equal(choice?.finishReason, FinishReason.ABORT);
    assert.ok(choice.tokenIds.length < 2000);
    assert.equal((await client.cancel({ requestId: 'cancel-rpc-1' })).found, false);
    assertAllPagesBack(await waitUntilIdle(client));
  });

  test('many concurrent requests with random cancellations leave no page held', async () => {
    let state = 12345;
    const random = (): number => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };
    const runs = Array.from({ length: 24 }, async (_, i) => {
      const prompt = Array.from({ length: 5 + Math.floor(random() * 30) }, () => Math.floor(random() * 500));
      const controller = new AbortController();
      const cancelAfter = random() < 0.5 ? Math.floor(random() * 4) : null;
      let numMessages = 0;
      try {
        for await (const _ of client.generate(greedyRequest(`mix-${i}`, prompt, 20), {
          signal: controller.signal,
        })) {
          if (cancelAfter !== null && numMessages++ >= cancelAfter) controller.abort();
        }
      } catch (error) {
        assert.ok(error instanceof CancelledError, String(error));
      }
    });
    await Promise.all(runs);
    assertAllPagesBack(await waitUntilIdle(client));
  });

  test('bad requests fail with typed errors naming the field', async () => {
    await assert.rejects(generate(client, greedyRequest('bad-1', [1, 2], 0)), (error: unknown) => {
      return error instanceof InvalidArgumentError && error.param === 'max_tokens';
    });
    await assert.rejects(generate(client, greedyRequest('bad-2', [1, 1_000_000])), (error: unknown) => {
      return error instanceof InvalidArgumentError && error.param === 'prompt_token_ids';
    });
    await assert.rejects(generate(client, greedyRequest('bad-3', [], 4)), InvalidArgumentError);
    await assert.rejects(
      generate(client, { ...greedyRequest('bad-4', [1, 2]), sampling: { temperature: -1 } }),
      (error: unknown) => error instanceof InvalidArgumentError && error.param === 'temperature',
    );
    await assert.rejects(
      generate(client, {
        ...greedyRequest('bad-5', [1, 2]),
        prefill: { address: '127.0.0.1:1', requestId: 'p' },
      }),
      UnimplementedError,
    );
    const first = generate(client, greedyRequest('dup-1', longPrompt, 2000));
    await assert.rejects(generate(client, greedyRequest('dup-1', [1, 2])), AlreadyExistsError);
    await client.cancel({ requestId: 'dup-1' });
    await first;
  });
});

test('the CLI rejects a role that does not exist, clearly', () => {
  // (prefill and decode roles are exercised by test/e2e/pd-workers.test.ts)
  const bin = new URL('../../cli/bin/tandem', import.meta.url).pathname;
  const result = spawnSync(bin, ['worker', '--role', 'bogus', '--model', fixtureDir('tiny-llama')], {
    encoding: 'utf8',
  });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /--role must be unified, prefill or decode/);
});
