// Which transport a pair uses: the rule (the addon's choice.cc) over endpoint views, forced
// transports against a real receiver process, and GPU pools where this build or host has no GPU.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  chooseTransport,
  type KvEndpointView,
  KvSender,
  KvTransportUnavailableError,
  kvtransferBuildInfo,
  MemoryRegion,
  newTransferId,
  pageBytesOf,
} from '../src/index.ts';
import { baseSpec, expectOn, type Peer, patternedPool, startPeer } from './helpers.ts';

const yes = { ok: true, reason: null };
const no = (reason: string) => ({ ok: false, reason });

function gpu(hostId: string, pid: number, overrides: Partial<KvEndpointView> = {}): KvEndpointView {
  return { hostId, pid, devicePool: true, cudaIpc: yes, nccl: yes, rdma: yes, ...overrides };
}
function host(hostId: string, pid: number): KvEndpointView {
  const off = no('pool in host memory');
  return { hostId, pid, devicePool: false, cudaIpc: off, nccl: off, rdma: off };
}
const order = (views: { usable: { transport: string }[] }) => views.usable.map((c) => c.transport);

describe('the transport rule', () => {
  test('same host, both pools on GPUs: cuda_ipc first, then rdma, nccl, tcp with staging', () => {
    const choice = chooseTransport(gpu('boot/a', 1), gpu('boot/a', 2));
    assert.deepEqual(order(choice), ['cuda_ipc', 'rdma', 'nccl', 'tcp']);
    assert.equal(choice.usable[0]?.reason, 'same host, both pools on GPUs');
    assert.equal(choice.usable[3]?.reason, 'TCP with pinned host staging of the GPU pool');
    assert.deepEqual(choice.rejected, []);
  });

  test('GPU pools on different hosts: rdma if both have a device, else nccl, else tcp', () => {
    let choice = chooseTransport(gpu('boot/a', 1), gpu('boot/b', 1));
    assert.deepEqual(order(choice), ['rdma', 'nccl', 'tcp']);
    assert.match(choice.rejected[0]?.reason ?? '', /different hosts \(boot\/a vs boot\/b\)/);

    choice = chooseTransport(
      gpu('boot/a', 1, { rdma: no('no RDMA device (ibv_get_device_list found none)') }),
      gpu('boot/b', 1),
    );
    assert.deepEqual(order(choice), ['nccl', 'tcp']);
    const rdma = choice.rejected.find((c) => c.transport === 'rdma');
    assert.equal(rdma?.reason, 'sender: no RDMA device (ibv_get_device_list found none)');

    choice = chooseTransport(
      gpu('boot/a', 1, { rdma: no('x') }),
      gpu('boot/b', 1, { nccl: no('NCCL not loadable') }),
    );
    assert.deepEqual(order(choice), ['tcp']);
    assert.equal(choice.rejected.find((c) => c.transport === 'nccl')?.reason, 'receiver: NCCL not loadable');
  });

  test('same host but IPC not possible falls to the next transport, saying why', () => {
    const choice = chooseTransport(
      gpu('boot/a', 1, { cudaIpc: no('no peer access from cuda:0 to cuda:1'), rdma: no('none') }),
      gpu('boot/a', 2, { cudaIpc: no('cudaIpcGetMemHandle failed') }),
    );
    assert.deepEqual(order(choice), ['nccl', 'tcp']);
    assert.equal(
      choice.rejected[0]?.reason,
      'receiver: cudaIpcGetMemHandle failed; sender: no peer access from cuda:0 to cuda:1',
    );
  });

  test('one process: cuda_ipc copies directly; nccl needs two processes', () => {
    const choice = chooseTransport(gpu('boot/a', 7, { rdma: no('none') }), gpu('boot/a', 7));
    assert.deepEqual(order(choice), ['cuda_ipc', 'tcp']);
    assert.equal(choice.usable[0]?.reason, 'same process, both pools on GPUs');
    assert.match(choice.rejected.find((c) => c.transport === 'nccl')?.reason ?? '', /one process/);
  });

  test('a host pool on either side: tcp only', () => {
    assert.deepEqual(order(chooseTransport(host('boot/a', 1), host('boot/a', 2))), ['tcp']);
    const mixed = chooseTransport(gpu('boot/a', 1), host('boot/a', 2));
    assert.deepEqual(order(mixed), ['tcp']);
    assert.equal(mixed.usable[0]?.reason, 'TCP with pinned host staging of the GPU pool');
    assert.match(
      mixed.rejected[0]?.reason ?? '',
      /needs both pools on GPUs; pools in GPU \(sender\) and host memory/,
    );
  });

  test('a forced transport: used when possible, else a named error saying why', () => {
    assert.deepEqual(order(chooseTransport(gpu('boot/a', 1), gpu('boot/a', 2), 'nccl')), ['nccl']);
    assert.deepEqual(order(chooseTransport(host('boot/a', 1), host('boot/b', 2), 'tcp')), ['tcp']);
    assert.throws(
      () => chooseTransport(gpu('boot/a', 1), gpu('boot/b', 2), 'cuda_ipc'),
      (error: unknown) =>
        error instanceof KvTransportUnavailableError &&
        error.message === "transport 'cuda_ipc' is not possible: different hosts (boot/a vs boot/b)",
    );
    assert.throws(
      () => chooseTransport(host('boot/a', 1), gpu('boot/a', 2), 'rdma'),
      /transport 'rdma' is not possible: needs both pools on GPUs/,
    );
    assert.throws(() => chooseTransport(host('a', 1), host('a', 2), 'carrier-pigeon' as 'tcp'), TypeError);
  });
});

describe('forced transports against a receiver process (host pools)', () => {
  let receiver: Peer;
  let port: number;

  before(async () => {
    receiver = startPeer();
    ({ port } = await receiver.ask<{ port: number }>(
      { type: 'listen', spec: baseSpec, ioTimeoutMs: 2000 },
      'listening',
    ));
  });
  after(async () => {
    await receiver.stop();
  });

  const region = () =>
    MemoryRegion.fromArrayBuffer(patternedPool(baseSpec, pageBytesOf(baseSpec), 3).buffer as ArrayBuffer);

  test('a host-pool receiver offers tcp only, and says why not the others', async () => {
    const other = startPeer();
    try {
      const { capabilities } = await other.ask<{ capabilities: Record<string, unknown> }>(
        { type: 'listen', spec: baseSpec, ioTimeoutMs: 2000 },
        'listening',
      );
      const off = { ok: false, reason: "the receiver's pool is in host memory" };
      assert.deepEqual(
        { ...capabilities, hostId: null },
        { hostId: null, device: null, cudaIpc: off, nccl: off, rdma: off },
      );
      assert.equal(capabilities.hostId, kvtransferBuildInfo().hostId);
    } finally {
      await other.stop();
    }
  });

  for (const transport of ['cuda_ipc', 'nccl', 'rdma'] as const) {
    test(`forcing ${transport} between host pools fails at connect with why; the receiver serves on`, async () => {
      await assert.rejects(
        KvSender.connect({ host: '127.0.0.1', port, spec: baseSpec, region: region(), transport }),
        (error: unknown) => {
          assert.ok(error instanceof KvTransportUnavailableError, String(error));
          assert.match(
            error.message,
            new RegExp(`^transport '${transport}' is not possible: needs both pools on GPUs`),
          );
          return true;
        },
      );
      const sender = await KvSender.connect({
        host: '127.0.0.1',
        port,
        spec: baseSpec,
        region: region(),
        transport: 'tcp',
      });
      try {
        assert.equal(sender.transport, 'tcp');
        const transferId = newTransferId();
        const { outcome } = await expectOn(receiver, transferId);
        await sender.sendPages({
          transferId,
          srcPages: [1],
          dstPages: [2],
          layers: null,
          commit: true,
          timeoutMs: 5000,
        });
        assert.equal((await outcome).ok, true);
      } finally {
        sender.close();
      }
    });
  }
});

describe('GPU pools', () => {
  const layout = {
    device: 'cuda:1',
    dtype: 'bfloat16' as const,
    numPages: 16,
    pageSize: 16,
    numLayers: 2,
    numKvHeads: 2,
    headDim: 64,
    totalBytes: 2 * 2 * 16 * 16 * 2 * 64 * 2,
    baseAddress: 0x7f00_0000_0000n,
  };

  test('fromKvLayout takes a CUDA pool and keeps its device', () => {
    const region = MemoryRegion.fromKvLayout(layout);
    assert.deepEqual(
      [region.device, region.deviceName, region.address, region.byteLength],
      [1, 'cuda:1', layout.baseAddress, layout.totalBytes],
    );
    assert.deepEqual(region.toNative(), {
      regionBuffer: null,
      regionAddress: layout.baseAddress,
      regionBytes: BigInt(layout.totalBytes),
      regionDevice: 1,
    });
    assert.equal(MemoryRegion.fromKvLayout({ ...layout, device: 'cpu' }).device, null);
    assert.throws(
      () => MemoryRegion.fromKvLayout({ ...layout, device: 'tpu:0' }),
      /unknown pool device 'tpu:0'/,
    );
  });
});
