import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  create,
  FinishReason,
  fromBinary,
  GenerateResponseSchema,
  KvEventBatchSchema,
  type MessageInitShape,
  Prefill,
  PrefillRequestSchema,
  PrefillResponseSchema,
  type SamplingParamsSchema,
  toBinary,
  Worker,
} from '@tandem/proto';

const protoDir = new URL('..', import.meta.url).pathname;

test('messages round-trip through the binary wire format', () => {
  const response = create(GenerateResponseSchema, {
    choices: [{ index: 1, tokenIds: [5, 6], logprobs: [-0.5, -1.25], finishReason: FinishReason.STOP }],
    numPromptTokens: 12,
    numCachedTokens: 8,
  });
  const decoded = fromBinary(GenerateResponseSchema, toBinary(GenerateResponseSchema, response));
  assert.deepEqual(decoded, response);
  const batch = create(KvEventBatchSchema, {
    workerId: 'w1',
    events: [
      {
        seq: 1n,
        event: {
          case: 'stored',
          value: { namespace: '', blocks: [{ hash: 2n ** 64n - 1n, numTokens: 16 }] },
        },
      },
      { seq: 2n, event: { case: 'removed', value: { namespace: 'salt', hashes: [7n] } } },
    ],
  });
  assert.deepEqual(fromBinary(KvEventBatchSchema, toBinary(KvEventBatchSchema, batch)), batch);
  assert.deepEqual(Object.keys(Worker.method).sort(), ['cancel', 'dumpBlocks', 'generate', 'health', 'info']);
  assert.deepEqual(Object.keys(Prefill.method), ['prefill']);
});

test('Prefill messages round-trip: absent kept apart from zero and empty, 64-bit ids exact', () => {
  const request = (
    sampling: MessageInitShape<typeof SamplingParamsSchema>,
    cacheNamespace: string | undefined,
  ) =>
    create(PrefillRequestSchema, {
      requestId: 'req-1',
      promptTokenIds: [5, 9, 151643],
      sampling: {
        temperature: 0.7,
        topK: 40,
        topP: 0.95,
        repetitionPenalty: 1.1,
        ...sampling,
      },
      topLogprobs: 2,
      ...(cacheNamespace === undefined ? {} : { cacheNamespace }),
      destination: {
        host: '10.0.0.7',
        port: 40123,
        transferId: 2n ** 64n - 1n,
        firstPageIndex: 2,
        dstPages: [17, 3],
        numTokens: 40,
      },
      leaseMs: 20_000,
    });
  const roundTrip = (message: ReturnType<typeof request>) =>
    fromBinary(PrefillRequestSchema, toBinary(PrefillRequestSchema, message));

  const absent = roundTrip(request({}, undefined));
  assert.deepEqual(absent, request({}, undefined));
  assert.equal(absent.destination?.transferId, 2n ** 64n - 1n);
  assert.equal(absent.cacheNamespace, undefined);
  assert.equal(absent.sampling?.seed, undefined);
  assert.equal(absent.sampling?.minP, 0);
  assert.deepEqual(absent.sampling?.logitBias, {});

  const zero = roundTrip(request({ seed: 0n, temperature: 0, minP: 0.05 }, ''));
  assert.equal(zero.cacheNamespace, '');
  assert.equal(zero.sampling?.seed, 0n);
  assert.equal(zero.sampling?.temperature, 0);
  assert.equal(zero.sampling?.minP, 0.05);

  const full = request({ seed: 2n ** 64n - 1n, logitBias: { 5: -100, 42: 2.5 } }, 'salt');
  assert.deepEqual(roundTrip(full), full);

  const response = create(PrefillResponseSchema, {
    firstTokenId: 1234,
    logprob: Math.log(0.3),
    topLogprobs: [
      { tokenId: 1234, logprob: Math.log(0.3) },
      { tokenId: 7, logprob: -1.0000000000000002 },
    ],
    numPromptTokens: 300,
    numCachedTokens: 256,
    bytesSent: 3n * 2n ** 40n,
  });
  assert.deepEqual(fromBinary(PrefillResponseSchema, toBinary(PrefillResponseSchema, response)), response);
});

test('proto/gen is exactly what `buf generate` produces from the .proto files', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'tandem-proto-'));
  try {
    const buf = join(protoDir, 'node_modules/.bin/buf');
    const env = { ...process.env, PATH: `${join(protoDir, 'node_modules/.bin')}:${process.env.PATH ?? ''}` };
    execFileSync(buf, ['generate', '-o', outDir], { cwd: protoDir, env, stdio: 'pipe' });
    for (const pkg of ['worker/v1', 'prefill/v1']) {
      const genDir = join(protoDir, 'gen/tandem', pkg);
      const fresh = readdirSync(join(outDir, 'gen/tandem', pkg)).sort();
      assert.deepEqual(readdirSync(genDir).sort(), fresh);
      for (const name of fresh) {
        const expected = readFileSync(join(outDir, 'gen/tandem', pkg, name), 'utf8');
        assert.equal(
          readFileSync(join(genDir, name), 'utf8'),
          expected,
          `${pkg}/${name} is stale: run pnpm proto:gen`,
        );
      }
    }
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});
