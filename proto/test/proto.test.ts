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
  Prefill,
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
