// A GPU pool where it cannot be moved: without the CUDA build, a named error says how to build
// it. (On a GPU host the lab, bench/kvtransfer/gpu_run.sh, moves real GPU pools and checks the
// device errors; a case for "the CUDA build on a machine without a GPU" ran on neither kind of
// machine, so it is gone.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KvAddonMissingError, poolBytesOf } from '../src/index.ts';
import { baseSpec } from './helpers.ts';

const bytes = poolBytesOf(baseSpec);

test('a GPU pool without the CUDA build: KvAddonMissingError naming the pool and the rebuild', async () => {
  // A child process, so this process's loader (and TANDEM_KVTRANSFER_CUDA_ADDON) stays untouched.
  const script = `
    import { KvReceiver, KvSender, MemoryRegion } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)};
    const spec = ${JSON.stringify(baseSpec)};
    const region = MemoryRegion.fromKvLayout({ ...spec, device: 'cuda:0', totalBytes: ${bytes}, baseAddress: 1n << 40n });
    const out = [];
    try { new KvReceiver({ host: '127.0.0.1', port: 0, spec, region }); } catch (e) { out.push([e.name, e.reason, e.message]); }
    try { await KvSender.connect({ host: '127.0.0.1', port: 1, spec, region }); } catch (e) { out.push([e.name, e.reason, e.message]); }
    console.log(JSON.stringify(out));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, TANDEM_KVTRANSFER_CUDA_ADDON: '/nonexistent/kvtransfer_cuda.node' },
    encoding: 'utf8',
  });
  assert.equal(child.status, 0, child.stderr);
  const errors = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '[]') as [string, string, string][];
  assert.equal(errors.length, 2);
  for (const [name, reason, message] of errors) {
    assert.deepEqual([name, reason], [KvAddonMissingError.name, 'kv_addon_missing']);
    assert.match(
      message,
      /^this pool is on cuda:0: kvtransfer's CUDA build is missing \(\/nonexistent\/kvtransfer_cuda.node\)/,
    );
    assert.match(message, /pnpm -s build:cuda/);
  }
});

test('the C++ unit tests: staging plans and ledger, NCCL framing, RDMA work requests, NCCL / RDMA absent', () => {
  const unit = fileURLToPath(new URL('../build/kvt_unit', import.meta.url));
  assert.ok(existsSync(unit), `${unit} is built by pnpm -s build`);
  const run = spawnSync(unit, [], {
    env: { ...process.env, TANDEM_NCCL_LIBRARY: '/nonexistent/libnccl.so.2' },
    encoding: 'utf8',
  });
  const failed = run.stdout.split('\n').filter((line) => line.startsWith('not ok'));
  assert.deepEqual(failed, []);
  assert.equal(run.status, 0, run.stdout + run.stderr);
  assert.ok(run.stdout.split('\n').filter((line) => line.startsWith('ok ')).length >= 20);
  const probeLine = run.stdout.split('\n').find((line) => line.startsWith('probe '));
  const probe = JSON.parse(probeLine?.slice(6) ?? '{}') as Record<string, unknown>;
  assert.equal(probe.ncclLoaded, false);
  assert.match(
    String(probe.ncclReason),
    /^NCCL not loadable \(\/nonexistent\/libnccl\.so\.2: .*\); set TANDEM_NCCL_LIBRARY/,
  );
  if (probe.rdmaBuilt === false) {
    assert.equal(probe.rdmaReason, 'built without ibverbs (install libibverbs-dev and rebuild)');
  } else if (probe.rdmaOk === false) {
    // No NIC here: discovery says so cleanly (a machine with one would report its device).
    assert.match(String(probe.rdmaReason), /^no RDMA device|has no active port$/);
  }
});
