// Issue 18, defect 6, services: a fake worker announced on NATS received 33 of 40 user prompts, and
// the Prefill RPC connected to any destination a caller supplied. Real processes throughout:
// - a cluster secret: calls without its token are refused; a worker that cannot prove membership
//   (another secret, or a forged announcement of a member's id) gets no request;
// - mTLS: a worker whose certificate another CA signed gets no request; clients without a
//   certificate are refused;
// - a prefill worker pushes KV only to receivers decode workers announced;
// - NATS and Redis with credentials.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type ClusterSecurity,
  clusterSecurityFrom,
  connectNats,
  createGrpcClient,
  grpcClientOptions,
  subjects,
  TandemError,
} from '@tandem/common';
import { startNatsServer, startRedisServer } from '@tandem/common/testing';
import { AnnounceKind, create, Prefill, Role, toBinary, Worker, WorkerAnnounceSchema } from '@tandem/proto';
import type { RouterApp } from '@tandem/router';
import {
  fixturesDir,
  repoRoot,
  startBackplane,
  startRouter,
  startWorker,
  type WorkerProcess,
  waitFor,
  waitForWorkers,
} from './router-cluster.ts';

const modelDir = join(fixturesDir, 'tiny-llama');
const model = 'tiny-llama';
const tlsDir = join(repoRoot, 'test', 'fixtures', 'tls');
const secret = 'correct horse battery staple';

function securityOf(values: Partial<Parameters<typeof clusterSecurityFrom>[0]>): ClusterSecurity {
  return clusterSecurityFrom({
    'cluster-secret': null,
    'cluster-secret-file': null,
    'tls-cert': null,
    'tls-key': null,
    'tls-ca': null,
    ...values,
  });
}

const memberTls = {
  'tls-cert': join(tlsDir, 'member.pem'),
  'tls-key': join(tlsDir, 'member.key'),
  'tls-ca': join(tlsDir, 'ca.pem'),
};
const memberTlsArgs = [
  '--tls-cert',
  memberTls['tls-cert'],
  '--tls-key',
  memberTls['tls-key'],
  '--tls-ca',
  memberTls['tls-ca'],
];

/** Sends `count` completions; returns the worker each was routed to. */
async function routedTo(router: RouterApp, count: number, prefix: string): Promise<string[]> {
  const workers: string[] = [];
  for (let i = 0; i < count; i++) {
    const requestId = `${prefix}-${i}`;
    const response = await fetch(`${router.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ model, prompt: `prompt number ${i}`, max_tokens: 2 }),
    });
    assert.equal(response.status, 200, await response.text());
    const record = (await (await fetch(`${router.url}/debug/routing/${requestId}`)).json()) as {
      decisions: { workerId: string | null }[];
    };
    workers.push(...record.decisions.map((d) => d.workerId ?? 'none'));
  }
  return workers;
}

async function grpcError(call: Promise<unknown>): Promise<TandemError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof TandemError, String(error));
    return error;
  }
  assert.fail('expected the call to fail');
}

describe('a cluster secret: only members get traffic', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  const workers: WorkerProcess[] = [];
  let router: RouterApp;
  const security = securityOf({ 'cluster-secret': secret });

  before(async () => {
    backplane = await startBackplane();
    const start = (workerId: string, extraArgs: string[]) =>
      startWorker({
        modelDir,
        workerId,
        natsUrl: backplane.nats.url,
        redisUrl: backplane.redis.url,
        extraArgs,
      });
    workers.push(
      ...(await Promise.all([
        start('member-w0', ['--cluster-secret', secret]),
        // Strangers: another secret, and none at all. Both announce the same model.
        start('stranger-w1', ['--cluster-secret', 'another secret']),
        start('stranger-w2', []),
      ])),
    );
    router = await startRouter(modelDir, backplane, { security });
    await waitForWorkers(router, 1);
  });

  after(async () => {
    await router?.close();
    await Promise.all(workers.map((worker) => worker.stop()));
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  test('workers that cannot prove membership get none of 40 requests', async () => {
    // Their announcements and heartbeats arrive; their proofs fail.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal(router.registry.size, 1);
    const routed = await routedTo(router, 40, 'member');
    assert.deepEqual(new Set(routed), new Set(['member-w0']));
  });

  test("a forged announcement of a member's id at another address changes nothing", async () => {
    const nc = await connectNats({ url: backplane.nats.url, name: 'forger' });
    try {
      const forged = create(WorkerAnnounceSchema, {
        kind: AnnounceKind.JOIN,
        workerId: 'member-w0',
        grpcAddress: workers[1]!.grpcAddress,
        modelName: model,
        role: Role.UNIFIED,
        kvLayout: { pageSize: 16 },
        leaseTtlMs: 10_000,
      });
      for (let i = 0; i < 3; i++) nc.publish(subjects.announce, toBinary(WorkerAnnounceSchema, forged));
      await nc.flush();
    } finally {
      await nc.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(router.registry.get('member-w0')?.grpcAddress, workers[0]!.grpcAddress);
    assert.deepEqual(new Set(await routedTo(router, 5, 'forged')), new Set(['member-w0']));
  });

  test('a call without the cluster token is refused; one with it is served', async () => {
    const bare = createGrpcClient(Worker, workers[0]!.grpcAddress);
    const member = createGrpcClient(Worker, workers[0]!.grpcAddress, grpcClientOptions(security));
    try {
      const refused = await grpcError(bare.info({}));
      assert.equal(refused.code, 'unauthenticated');
      const stream = bare.generate({ requestId: 'no-token', promptTokenIds: [1, 2, 3], maxTokens: 2 });
      const refusedStream = await grpcError(
        (async () => {
          for await (const _ of stream) {
          }
        })(),
      );
      assert.equal(refusedStream.code, 'unauthenticated');
      assert.equal((await member.info({})).workerId, 'member-w0');
    } finally {
      bare.close();
      member.close();
    }
  });
});

describe('mTLS: a worker without a certificate of the cluster CA gets no traffic', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  const workers: WorkerProcess[] = [];
  let router: RouterApp;

  before(async () => {
    backplane = await startBackplane();
    const start = (workerId: string, extraArgs: string[]) =>
      startWorker({
        modelDir,
        workerId,
        natsUrl: backplane.nats.url,
        redisUrl: backplane.redis.url,
        extraArgs,
      });
    workers.push(
      ...(await Promise.all([
        start('tls-member', memberTlsArgs),
        start('tls-stranger', [
          '--tls-cert',
          join(tlsDir, 'stranger.pem'),
          '--tls-key',
          join(tlsDir, 'stranger.key'),
          '--tls-ca',
          join(tlsDir, 'rogue-ca.pem'),
        ]),
      ])),
    );
    router = await startRouter(modelDir, backplane, { security: securityOf(memberTls) });
    await waitForWorkers(router, 1);
  });

  after(async () => {
    await router?.close();
    await Promise.all(workers.map((worker) => worker.stop()));
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  test('requests reach only the member, over TLS', async () => {
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal(router.registry.size, 1);
    assert.deepEqual(new Set(await routedTo(router, 10, 'tls')), new Set(['tls-member']));
  });

  test('a client without a certificate, or a plaintext one, is refused', async () => {
    const address = workers[0]!.grpcAddress;
    const plaintext = createGrpcClient(Worker, address);
    const noCert = createGrpcClient(
      Worker,
      address,
      grpcClientOptions(securityOf({ 'tls-ca': memberTls['tls-ca'] })),
    );
    const member = createGrpcClient(Worker, address, grpcClientOptions(securityOf(memberTls)));
    try {
      assert.equal((await grpcError(plaintext.info({}, { timeoutMs: 3000 }))).code, 'unavailable');
      assert.equal((await grpcError(noCert.info({}, { timeoutMs: 3000 }))).code, 'unavailable');
      assert.equal((await member.info({}, { timeoutMs: 3000 })).workerId, 'tls-member');
    } finally {
      plaintext.close();
      noCert.close();
      member.close();
    }
  });
});

describe('a prefill worker pushes KV only to decode workers it knows', () => {
  let backplane: Awaited<ReturnType<typeof startBackplane>>;
  const workers: WorkerProcess[] = [];
  let router: RouterApp;
  const security = securityOf({ 'cluster-secret': secret });

  before(async () => {
    backplane = await startBackplane();
    const start = (workerId: string, extraArgs: string[]) =>
      startWorker({
        modelDir,
        workerId,
        natsUrl: backplane.nats.url,
        redisUrl: backplane.redis.url,
        extraArgs: ['--cluster-secret', secret, ...extraArgs],
      });
    workers.push(
      await start('dest-d', ['--role', 'decode', '--disagg-threshold', '0', '--log-level', 'info']),
    );
    workers.push(await start('dest-p', ['--role', 'prefill']));
    router = await startRouter(modelDir, backplane, { security, disaggThreshold: 0 });
    await waitForWorkers(router, 1);
    await waitFor('the prefill worker', () => router.registry.prefillWorkers().length === 1, 15_000);
  });

  after(async () => {
    await router?.close();
    await Promise.all(workers.map((worker) => worker.stop()));
    await backplane?.nats.stop();
    await backplane?.redis.stop();
  });

  test('the cluster runs disaggregated with the secret (D -> P calls carry its token)', async () => {
    // P learns D from D's next heartbeat (and verifies it): until then D prefills locally.
    let remote = false;
    for (let i = 0; i < 40 && !remote; i++) {
      const prompt = Array.from({ length: 80 }, (_, j) => 10 + ((j * 37 + i) % 400));
      const response = await fetch(`${router.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, prompt, max_tokens: 3 }),
      });
      assert.equal(response.status, 200, await response.text());
      await new Promise((resolve) => setTimeout(resolve, 250));
      remote = workers[0]!.output().includes('"remote prefill done"');
    }
    assert.ok(remote, 'a prompt was prefilled by the prefill worker');
  });

  test('a Prefill call naming any other destination is refused before anything connects', async () => {
    let connections = 0;
    const listener = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as { port: number }).port;
    const client = createGrpcClient(Prefill, workers[1]!.grpcAddress, grpcClientOptions(security));
    try {
      const refused = await grpcError(
        client.prefill(
          {
            requestId: 'forged',
            promptTokenIds: [1, 2, 3, 4],
            destination: {
              host: '127.0.0.1',
              port,
              transferId: 1n,
              firstPageIndex: 0,
              dstPages: [0],
              numTokens: 4,
            },
            leaseMs: 5000,
          },
          { timeoutMs: 10_000 },
        ),
      );
      assert.equal(refused.code, 'permission_denied');
      assert.equal(refused.reason, 'prefill_destination_unknown');
      assert.equal(connections, 0, 'the prefill worker never dialled the destination');
    } finally {
      client.close();
      listener.close();
    }
  });
});

describe('NATS and Redis with credentials', () => {
  test('a cluster whose NATS needs a user and password and whose Redis needs a password', async () => {
    const nats = await startNatsServer({ user: 'tandem', password: 'nats-pass' });
    const redis = await startRedisServer({ password: 'redis-pass' });
    let worker: WorkerProcess | null = null;
    let router: RouterApp | null = null;
    try {
      assert.match(nats.url, /^nats:\/\/tandem:nats-pass@/);
      worker = await startWorker({ modelDir, workerId: 'creds-w0', natsUrl: nats.url, redisUrl: redis.url });
      router = await startRouter(modelDir, { nats, redis });
      await waitForWorkers(router, 1);
      assert.deepEqual(new Set(await routedTo(router, 3, 'creds')), new Set(['creds-w0']));
      // Without the credentials neither lets a client in.
      const bareNats = nats.url.replace('tandem:nats-pass@', '');
      await assert.rejects(connectNats({ url: bareNats, name: 'no-creds', connectTimeoutMs: 2000 }));
      assert.doesNotMatch(worker.output(), /nats-pass|redis-pass/, 'logs carry no password');
    } finally {
      await router?.close();
      await worker?.stop();
      await nats.stop();
      await redis.stop();
    }
  });
});
