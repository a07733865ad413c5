// The discovery library: announcements, load reports, leave, expiry (with and without a live
// lease), one page size per model, and the owner's extension made and released with each worker.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Logger, WorkerDirectory } from '@tandem/common';
import { AnnounceKind, create, Role, WorkerAnnounceSchema, WorkerLoadSchema } from '@tandem/proto';

function announce(workerId: string, fields: { pageSize?: number; role?: Role; kind?: AnnounceKind } = {}) {
  return create(WorkerAnnounceSchema, {
    kind: fields.kind ?? AnnounceKind.JOIN,
    workerId,
    grpcAddress: `127.0.0.1:${workerId.length + 5000}`,
    modelName: 'm',
    role: fields.role ?? Role.DECODE,
    kvLayout: { pageSize: fields.pageSize ?? 16, numLayers: 2, pageBytes: 1024n },
    leaseTtlMs: 1000,
    kvSeq: 7n,
    startedAtMs: 42n,
  });
}

function setup(pageSize: number | null = null) {
  const lines: string[] = [];
  const released: string[] = [];
  const directory = new WorkerDirectory<{ id: string }>(
    { modelNames: ['m'], roles: ['decode', 'prefill'], defaultLeaseTtlMs: 500, pageSize },
    new Logger({ level: 'info', write: (line) => lines.push(line) }),
    (worker) => ({ id: worker.workerId }),
    (_worker, extension) => released.push(extension.id),
  );
  const events: string[] = [];
  directory.onEvent((event) => events.push(`${event.type}:${event.workerId}`));
  return { directory, lines, released, events };
}

test('join, load, leave; other models and roles are ignored', () => {
  const { directory, released, events } = setup();
  directory.onAnnounce(announce('a'), 0);
  directory.onAnnounce(announce('b', { role: Role.UNIFIED }), 0);
  directory.onAnnounce(create(WorkerAnnounceSchema, { ...announce('c'), modelName: 'other' }), 0);
  assert.deepEqual(
    [...directory.entries()].map(({ worker }) => worker.workerId),
    ['a'],
  );
  const a = directory.entry('a')!;
  assert.equal(a.worker.kvBytesPerPage, 1024 * 2 * 2);
  assert.equal(a.extension.id, 'a');
  directory.onLoad(
    create(WorkerLoadSchema, { workerId: 'a', timestampMs: 5n, load: { numWaiting: 3 }, kvSeq: 9n }),
    10,
  );
  assert.equal(directory.entry('a')!.worker.load?.numWaiting, 3);
  assert.equal(directory.entry('a')!.worker.lastHeardMs, 10);
  directory.onAnnounce(announce('a', { kind: AnnounceKind.LEAVE }), 20);
  assert.equal(directory.size, 0);
  assert.deepEqual(released, ['a']);
  assert.deepEqual(events, ['joined:a', 'load:a', 'load:a', 'left:a']);
});

test('one page size per model: the first worker fixes it, a worker that differs is refused', () => {
  const { directory, lines } = setup();
  assert.equal(directory.pageSize, null);
  directory.onAnnounce(announce('a', { pageSize: 16 }), 0);
  directory.onAnnounce(announce('b', { pageSize: 32 }), 0);
  assert.equal(directory.pageSize, 16);
  assert.equal(directory.has('b'), false);
  const refusal = lines
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .find((r) => r.workerId === 'b');
  assert.equal(refusal?.level, 'warn');
  assert.match(String(refusal?.msg), /page size differs/);
  assert.equal(refusal?.fix, 'start it with --page-size 16');
  const fixed = setup(64).directory;
  fixed.onAnnounce(announce('c', { pageSize: 16 }), 0);
  assert.equal(fixed.size, 0);
});

test('a silent worker expires unless its lease is alive', async () => {
  const { directory } = setup();
  directory.onAnnounce(announce('a'), 0);
  directory.onAnnounce(announce('b'), 0);
  await directory.expireSilent(900, async () => true);
  assert.equal(directory.size, 2, 'within the TTL nobody is asked');
  await directory.expireSilent(1500, async (id) => id === 'a');
  assert.deepEqual(
    [...directory.entries()].map(({ worker }) => worker.workerId),
    ['a'],
  );
  assert.equal(directory.entry('a')!.worker.lastHeardMs, 1500, 'a live lease counts as heard from');
});
