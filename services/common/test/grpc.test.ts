import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  addGrpcService,
  bindGrpcServer,
  type CallContext,
  CancelledError,
  createGrpcClient,
  grpc,
  InvalidArgumentError,
  NotFoundError,
  shutdownGrpcServer,
} from '@tandem/common';
import { FinishReason, ServingStatus, Worker } from '@tandem/proto';

// A real server and client over TCP, with the Worker schema; the handlers are tiny on purpose
// (the worker's own tests run the real engine behind them).
async function startServer() {
  const cancelled: string[] = [];
  const server = new grpc.Server();
  addGrpcService(server, Worker, {
    async health(_request, context) {
      const caller = context.metadata.get('x-request-id')[0];
      return {
        status: ServingStatus.SERVING,
        workerId: typeof caller === 'string' ? `w-test/${caller}` : 'w-test',
      };
    },
    async info() {
      throw new NotFoundError('no model here');
    },
    async cancel(request) {
      return { found: request.requestId === 'known' };
    },
    async *generate(request, context: CallContext) {
      if (request.maxTokens === 0)
        throw new InvalidArgumentError('max_tokens must be > 0', { param: 'max_tokens' });
      for (let i = 0; i < request.maxTokens; i++) {
        if (context.signal.aborted) {
          cancelled.push(request.requestId);
          return;
        }
        const last = i === request.maxTokens - 1;
        yield {
          choices: [
            {
              index: 0,
              tokenIds: [request.promptTokenIds[0]! + i],
              finishReason: last ? FinishReason.LENGTH : FinishReason.UNSPECIFIED,
            },
          ],
          numPromptTokens: request.promptTokenIds.length,
        };
        await sleep(request.maxTokens > 10 ? 20 : 0);
      }
    },
    async *dumpBlocks() {},
  });
  const port = await bindGrpcServer(server, '127.0.0.1', 0);
  return { server, port, cancelled };
}

test('unary and server-streaming calls round-trip typed messages', async () => {
  const { server, port } = await startServer();
  const client = createGrpcClient(Worker, `127.0.0.1:${port}`);
  try {
    const health = await client.health({});
    assert.equal(health.status, ServingStatus.SERVING);
    assert.equal(health.workerId, 'w-test');
    assert.equal((await client.cancel({ requestId: 'known' })).found, true);
    const tokens: number[] = [];
    let finish: FinishReason | null = null;
    for await (const response of client.generate({
      requestId: 'r1',
      promptTokenIds: [100, 1],
      maxTokens: 4,
    })) {
      assert.equal(response.numPromptTokens, 2);
      for (const choice of response.choices) {
        tokens.push(...choice.tokenIds);
        if (choice.finishReason !== FinishReason.UNSPECIFIED) finish = choice.finishReason;
      }
    }
    assert.deepEqual(tokens, [100, 101, 102, 103]);
    assert.equal(finish, FinishReason.LENGTH);
  } finally {
    client.close();
    await shutdownGrpcServer(server);
  }
});

test('client interceptors and per-call metadata reach the server', async () => {
  const { server, port } = await startServer();
  const addRequestId: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        if (metadata.get('x-request-id').length === 0) metadata.set('x-request-id', 'from-interceptor');
        next(metadata, listener);
      },
    });
  const client = createGrpcClient(Worker, `127.0.0.1:${port}`, { interceptors: [addRequestId] });
  try {
    assert.equal((await client.health({})).workerId, 'w-test/from-interceptor');
    assert.equal((await client.health({}, { metadata: { 'x-request-id': 'r-42' } })).workerId, 'w-test/r-42');
  } finally {
    client.close();
    await shutdownGrpcServer(server);
  }
});

test('a server error arrives as the same error class with its param', async () => {
  const { server, port } = await startServer();
  const client = createGrpcClient(Worker, `127.0.0.1:${port}`);
  try {
    await assert.rejects(client.info({}), (error: unknown) => error instanceof NotFoundError);
    const stream = client.generate({ requestId: 'bad', promptTokenIds: [1], maxTokens: 0 });
    await assert.rejects(
      async () => {
        for await (const _ of stream) assert.fail('no response expected');
      },
      (error: unknown) => error instanceof InvalidArgumentError && error.param === 'max_tokens',
    );
  } finally {
    client.close();
    await shutdownGrpcServer(server);
  }
});

test('aborting or breaking out of a stream cancels it on the server', async () => {
  const { server, port, cancelled } = await startServer();
  const client = createGrpcClient(Worker, `127.0.0.1:${port}`);
  try {
    const controller = new AbortController();
    const received: number[] = [];
    await assert.rejects(async () => {
      for await (const response of client.generate(
        { requestId: 'aborted', promptTokenIds: [0], maxTokens: 1000 },
        { signal: controller.signal },
      )) {
        received.push(...response.choices.flatMap((choice) => choice.tokenIds));
        if (received.length === 3) controller.abort();
      }
    }, CancelledError);
    for await (const _ of client.generate({ requestId: 'broken', promptTokenIds: [0], maxTokens: 1000 }))
      break;
    const deadline = Date.now() + 5000;
    while (cancelled.length < 2 && Date.now() < deadline) await sleep(10);
    assert.deepEqual([...cancelled].sort(), ['aborted', 'broken']);
  } finally {
    client.close();
    await shutdownGrpcServer(server);
  }
});
