// Real loopback sockets between this process and a peer process (test/peer.ts).
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  KvConnectError,
  KvHandshakeMismatchError,
  KvOutOfBoundsError,
  KvSender,
  type KvSpec,
  KvTransferAbortedError,
  KvTransferClosedError,
  KvTransferTimeoutError,
  MemoryRegion,
  newTransferId,
  pageBytesOf,
  pageCopyBytes,
} from '../src/index.ts';
import { baseSpec, expectOn, type Peer, patternedPool, startPeer } from './helpers.ts';

const pageBytes = pageBytesOf(baseSpec);
// The receiver's pool is larger than the sender's: page addresses differ per side.
const receiverSpec: KvSpec = { ...baseSpec, numPages: 64 };

async function connectSender(port: number, pool: Uint8Array, numStreams: number): Promise<KvSender> {
  return KvSender.connect({
    host: '127.0.0.1',
    port,
    spec: baseSpec,
    region: MemoryRegion.fromArrayBuffer(pool.buffer as ArrayBuffer),
    numStreams,
  });
}

function pageSlice(pool: Uint8Array, numPages: number, layer: number, kv: number, page: number): Uint8Array {
  const offset = ((layer * 2 + kv) * numPages + page) * pageBytes;
  return pool.subarray(offset, offset + pageBytes);
}

describe('kvtransfer over TCP between two processes', () => {
  let receiver: Peer;
  let port: number;

  before(async () => {
    receiver = startPeer();
    ({ port } = await receiver.ask<{ port: number }>(
      { type: 'listen', spec: receiverSpec, ioTimeoutMs: 2000 },
      'listening',
    ));
  });
  after(async () => {
    await receiver.stop();
  });

  test('page copies land in the receiver pages, every layer, K and V', async () => {
    const pool = patternedPool(baseSpec, pageBytes, 17);
    const sender = await connectSender(port, pool, 3);
    try {
      assert.equal(sender.remoteNumPages, 64);
      // Scattered and consecutive pages (the consecutive run is merged into one range).
      const srcPages = [3, 4, 5, 0, 47, 20];
      const dstPages = [10, 11, 12, 63, 1, 30];
      // Host pools on both sides: TCP, and both ends say so.
      assert.equal(sender.transport, 'tcp');
      assert.match(sender.transportReason, /^tcp: both pools in host memory/);
      const transferId = newTransferId();
      const { outcome: waited } = await expectOn(receiver, transferId);
      const completed = receiver.next<{ event: string; transport: string }>('event');
      const bytes = await sender.sendPages({
        transferId,
        srcPages,
        dstPages,
        layers: null,
        commit: true,
        timeoutMs: 5000,
      });
      const expectedBytes = pageCopyBytes(baseSpec, srcPages.length);
      assert.equal(bytes, expectedBytes);
      assert.deepEqual(await waited, { type: 'waited', ok: true, bytes: expectedBytes });
      const event = await completed;
      assert.deepEqual([event.event, event.transport], ['completed', 'tcp']);

      const { bytes: remote } = await receiver.ask<{ bytes: Uint8Array }>(
        { type: 'read', offset: 0, length: pageCopyBytes(receiverSpec, receiverSpec.numPages) },
        'data',
      );
      const written = new Set(dstPages);
      for (let layer = 0; layer < baseSpec.numLayers; layer++) {
        for (let kv = 0; kv < 2; kv++) {
          srcPages.forEach((src, i) => {
            const expected = pageSlice(pool, baseSpec.numPages, layer, kv, src);
            const actual = pageSlice(remote, receiverSpec.numPages, layer, kv, dstPages[i]!);
            assert.deepEqual(actual, expected, `layer ${layer} kv ${kv} page ${src} -> ${dstPages[i]}`);
          });
          for (let page = 0; page < receiverSpec.numPages; page++) {
            if (written.has(page)) continue;
            assert.ok(
              pageSlice(remote, receiverSpec.numPages, layer, kv, page).every((b) => b === 0),
              `page ${page} untouched`,
            );
          }
        }
      }
    } finally {
      sender.close();
    }
  });

  test('layer by layer: progress grows per layer and the commit counts every byte', async () => {
    const pool = patternedPool(baseSpec, pageBytes, 99);
    const sender = await connectSender(port, pool, 2);
    try {
      const transferId = newTransferId();
      const { outcome: waited } = await expectOn(receiver, transferId);
      sender.prepare(transferId); // asks for a one-sided grant ahead; nothing to do on TCP
      const srcPages = [1, 2, 9];
      const dstPages = [40, 41, 2];
      for (let layer = 0; layer < baseSpec.numLayers; layer++) {
        const commit = layer === baseSpec.numLayers - 1;
        await sender.sendPages({ transferId, srcPages, dstPages, layers: [layer], commit, timeoutMs: 5000 });
        if (!commit) {
          const { bytes } = await receiver.ask<{ bytes: number }>(
            { type: 'progress', transferId },
            'progress',
          );
          assert.equal(bytes, pageCopyBytes(baseSpec, srcPages.length, layer + 1));
        }
      }
      const result = await waited;
      assert.equal(result.ok, true);
      assert.equal(result.bytes, pageCopyBytes(baseSpec, srcPages.length));
      const { bytes: remote } = await receiver.ask<{ bytes: Uint8Array }>(
        { type: 'read', offset: 0, length: pageCopyBytes(receiverSpec, receiverSpec.numPages) },
        'data',
      );
      assert.deepEqual(pageSlice(remote, 64, 3, 1, 2), pageSlice(pool, 48, 3, 1, 9));
    } finally {
      sender.close();
    }
  });

  test('raw byte ranges between two buffers over 4 streams', async () => {
    const pool = patternedPool(baseSpec, pageBytes, 5);
    const sender = await connectSender(port, pool, 4);
    try {
      const transferId = newTransferId();
      const { outcome: waited } = await expectOn(receiver, transferId);
      // One big range split across the streams, one odd-sized one.
      const ranges = BigUint64Array.from([0n, 4096n, 300_000n, 300_001n, 1n, 77n]);
      assert.equal(await sender.sendRanges({ transferId, ranges, commit: true, timeoutMs: 5000 }), 300_077);
      assert.equal((await waited).bytes, 300_077);
      const { bytes: remote } = await receiver.ask<{ bytes: Uint8Array }>(
        { type: 'read', offset: 0, length: 304_096 },
        'data',
      );
      assert.deepEqual(remote.subarray(4096, 304_096), pool.subarray(0, 300_000));
      assert.deepEqual(remote.subarray(1, 78), pool.subarray(300_001, 300_078));
    } finally {
      sender.close();
    }
  });

  test('a layout mismatch is a named error on the sender, naming the field', async () => {
    const cases: [Partial<KvSpec>, string][] = [
      [{ model: 'other-model' }, 'model'],
      [{ numLayers: 5 }, 'numLayers'],
      [{ numKvHeads: 4 }, 'numKvHeads'],
      [{ headDim: 32 }, 'headDim'],
      [{ dtype: 'bfloat16' }, 'dtype'],
      [{ pageSize: 16 }, 'pageSize'],
    ];
    for (const [change, field] of cases) {
      const spec = { ...baseSpec, ...change };
      const pool = new Uint8Array(spec.numLayers * 2 * spec.numPages * pageBytesOf(spec));
      const rejected = receiver.next<{ event: string; error: string }>('event');
      await assert.rejects(
        KvSender.connect({
          host: '127.0.0.1',
          port,
          spec,
          region: MemoryRegion.fromArrayBuffer(pool.buffer),
        }),
        (error: unknown) => {
          assert.ok(error instanceof KvHandshakeMismatchError, String(error));
          assert.match(error.message, new RegExp(`${field}: receiver has`));
          return true;
        },
      );
      assert.deepEqual(await rejected, {
        type: 'event',
        event: 'rejected',
        error: 'KvHandshakeMismatchError',
        transport: null,
      });
    }
  });

  test('a page outside the receiver pool is refused before any byte moves', async () => {
    const sender = await connectSender(port, patternedPool(baseSpec, pageBytes, 1), 1);
    try {
      await assert.rejects(
        sender.sendPages({
          transferId: newTransferId(),
          srcPages: [0],
          dstPages: [64],
          layers: [baseSpec.numLayers - 1],
          commit: true,
          timeoutMs: 1000,
        }),
        KvOutOfBoundsError,
      );
      await assert.rejects(
        sender.sendRanges({
          transferId: 1n,
          ranges: BigUint64Array.from([0n, 0n, 1n << 40n]),
          commit: true,
          timeoutMs: 1000,
        }),
        KvOutOfBoundsError,
      );
    } finally {
      sender.close();
    }
  });

  test('an abort fails the receiver waiter with KvTransferAbortedError', async () => {
    const sender = await connectSender(port, patternedPool(baseSpec, pageBytes, 3), 2);
    try {
      const transferId = newTransferId();
      const { outcome: waited } = await expectOn(receiver, transferId);
      await sender.sendPages({
        transferId,
        srcPages: [1],
        dstPages: [1],
        layers: [0],
        commit: false,
        timeoutMs: 5000,
      });
      sender.abort(transferId);
      const result = await waited;
      assert.equal(result.ok, false);
      assert.equal(result.error, 'KvTransferAbortedError');
    } finally {
      sender.close();
    }
  });

  test('frames of a transfer the receiver does not expect are dropped; the send fails as aborted', async () => {
    const pool = patternedPool(baseSpec, pageBytes, 11);
    const sender = await connectSender(port, pool, 2);
    try {
      await assert.rejects(
        sender.sendPages({
          transferId: newTransferId(),
          srcPages: [2],
          dstPages: [33],
          layers: [3],
          commit: true,
          timeoutMs: 5000,
        }),
        KvTransferAbortedError,
      );
      const { bytes: remote } = await receiver.ask<{ bytes: Uint8Array }>(
        { type: 'read', offset: 0, length: pageCopyBytes(receiverSpec, receiverSpec.numPages) },
        'data',
      );
      // (Layer 3's pages 33..36 are written by no other test.)
      for (let kv = 0; kv < 2; kv++) {
        assert.ok(
          pageSlice(remote, 64, 3, kv, 33).every((b) => b === 0),
          `kv ${kv} page 33 untouched`,
        );
      }
      // The connection stays usable for expected transfers.
      const transferId = newTransferId();
      const { outcome: waited } = await expectOn(receiver, transferId);
      await sender.sendPages({
        transferId,
        srcPages: [2],
        dstPages: [34],
        layers: [0],
        commit: true,
        timeoutMs: 5000,
      });
      assert.equal((await waited).ok, true);
    } finally {
      sender.close();
    }
  });

  test('a released transfer fails its waiter, and later frames of it are dropped', async () => {
    const pool = patternedPool(baseSpec, pageBytes, 12);
    const sender = await connectSender(port, pool, 1);
    try {
      const transferId = newTransferId();
      const { outcome: waited } = await expectOn(receiver, transferId);
      await sender.sendPages({
        transferId,
        srcPages: [3],
        dstPages: [35],
        layers: [3],
        commit: false,
        timeoutMs: 5000,
      });
      await receiver.ask({ type: 'release', transferId }, 'released');
      assert.equal((await waited).error, 'KvTransferAbortedError');
      await assert.rejects(
        sender.sendPages({
          transferId,
          srcPages: [3],
          dstPages: [36],
          layers: [3],
          commit: true,
          timeoutMs: 5000,
        }),
        KvTransferAbortedError,
      );
      const { bytes: remote } = await receiver.ask<{ bytes: Uint8Array }>(
        { type: 'read', offset: 0, length: pageCopyBytes(receiverSpec, receiverSpec.numPages) },
        'data',
      );
      assert.deepEqual(pageSlice(remote, 64, 3, 0, 35), pageSlice(pool, 48, 3, 0, 3));
      assert.ok(pageSlice(remote, 64, 3, 0, 36).every((b) => b === 0));
    } finally {
      sender.close();
    }
  });

  test('waiting for a transfer nobody sends times out', async () => {
    const started = Date.now();
    const result = await (await expectOn(receiver, newTransferId(), 200)).outcome;
    assert.equal(result.error, 'KvTransferTimeoutError');
    assert.ok(Date.now() - started < 2000);
  });

  test('a sender killed mid-transfer fails the receiver waiter with KvPeerClosedError', async () => {
    const sender = startPeer();
    try {
      await sender.ask({ type: 'connect', spec: baseSpec, port, numStreams: 2, fill: 7 }, 'connected');
      const transferId = newTransferId();
      const { outcome: waited } = await expectOn(receiver, transferId);
      // Layer 0 lands uncommitted: the transfer is open on the receiver when the sender dies.
      const sent = await sender.ask<{ ok: boolean; bytes: number }>(
        {
          type: 'sendPages',
          transferId,
          srcPages: [0, 1],
          dstPages: [5, 6],
          layers: [0],
          commit: false,
          timeoutMs: 5000,
        },
        'sent',
      );
      assert.equal(sent.bytes, pageCopyBytes(baseSpec, 2, 1));
      const { bytes } = await receiver.ask<{ bytes: number }>({ type: 'progress', transferId }, 'progress');
      assert.equal(bytes, sent.bytes);
      const killedAt = Date.now();
      await sender.stop();
      const result = await waited;
      assert.deepEqual([result.ok, result.error], [false, 'KvPeerClosedError']);
      assert.ok(Date.now() - killedAt < 1000);
    } finally {
      await sender.stop();
    }
  });
});

describe('kvtransfer failures without a kvtransfer peer', () => {
  test('connecting to a closed port is a KvConnectError', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const pool = new Uint8Array(pageCopyBytes(baseSpec, baseSpec.numPages));
    await assert.rejects(
      KvSender.connect({
        host: '127.0.0.1',
        port,
        spec: baseSpec,
        region: MemoryRegion.fromArrayBuffer(pool.buffer),
      }),
      KvConnectError,
    );
  });

  test('a receiver that stops reading makes the send time out; close() fails later sends', async () => {
    // A TCP peer that answers the handshake and then never reads: the send must hit its deadline.
    const server = createServer((socket) => {
      socket.once('data', () => {
        const reply = Buffer.alloc(968); // HelloReply with zeroed capabilities (a host pool, TCP only)
        reply.writeUInt32LE(0x54564b54, 0);
        reply.writeUInt32LE(0, 4);
        reply.writeUInt32LE(1 << 20, 8);
        reply.writeBigUInt64LE(1n << 40n, 16);
        socket.write(reply);
        socket.pause();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const big: KvSpec = { ...baseSpec, numPages: 4096 };
    const pool = new Uint8Array(pageCopyBytes(big, big.numPages));
    const sender = await KvSender.connect({
      host: '127.0.0.1',
      port,
      spec: big,
      region: MemoryRegion.fromArrayBuffer(pool.buffer),
      numStreams: 1,
    });
    try {
      const started = Date.now();
      const pages = Array.from({ length: 4096 }, (_, i) => i);
      await assert.rejects(
        sender.sendPages({
          transferId: 1n,
          srcPages: pages,
          dstPages: pages,
          layers: null,
          commit: true,
          timeoutMs: 300,
        }),
        KvTransferTimeoutError,
      );
      assert.ok(Date.now() - started < 3000);
    } finally {
      sender.close();
      sender.close();
      server.close();
    }
    await assert.rejects(
      sender.sendPages({
        transferId: 2n,
        srcPages: [0],
        dstPages: [0],
        layers: null,
        commit: true,
        timeoutMs: 300,
      }),
      KvTransferClosedError,
    );
  });
});
