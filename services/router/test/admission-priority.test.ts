// Priority classes in admission (real AdmissionQueue): while all classes wait, admissions follow
// the weights; low is slowed, never starved; a class idle for a while banks no credit; FIFO within
// a class; the x-priority header's parsing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AdmissionQueue,
  defaultAdmissionParams,
  type PriorityClass,
  priorityOf,
} from '../src/cluster/admission.ts';

const signal = new AbortController().signal;

/** One slot; `classes` queue behind it; returns the order they are admitted in (each released at once). */
async function admissionOrder(queue: AdmissionQueue, classes: PriorityClass[]): Promise<string[]> {
  const order: string[] = [];
  const blocker = await queue.admit(signal);
  const all = classes.map((priority, i) =>
    queue.admit(signal, 1, priority).then((release) => {
      order.push(`${priority}${i}`);
      // The next admission happens once this one ends.
      setImmediate(release);
    }),
  );
  blocker();
  await Promise.all(all);
  return order;
}

test('while every class waits, admissions follow the weights 4:2:1 and low still gets its share', async () => {
  const queue = new AdmissionQueue({ ...defaultAdmissionParams, maxConcurrent: 1 });
  const classes: PriorityClass[] = [
    ...Array<PriorityClass>(12).fill('low'),
    ...Array<PriorityClass>(12).fill('normal'),
    ...Array<PriorityClass>(12).fill('high'),
  ];
  const order = await admissionOrder(queue, classes);
  const first14 = order.slice(0, 14).map((name) => name.replace(/\d+$/, ''));
  const count = (name: string): number => first14.filter((c) => c === name).length;
  assert.deepEqual([count('high'), count('normal'), count('low')], [8, 4, 2], first14.join(' '));
  // FIFO within a class.
  const lows = order.filter((name) => name.startsWith('low')).map((name) => Number(name.slice(3)));
  assert.deepEqual(
    lows,
    [...lows].sort((a, b) => a - b),
  );
  const stats = queue.stats();
  assert.equal(stats.low.numAdmitted, 12);
  assert.equal(stats.high.numAdmitted, 12);
  assert.equal(stats.normal.numAdmitted, 13, 'the blocker came in as normal');
});

test('a class that was idle rejoins at the current virtual time (no banked credit)', async () => {
  const queue = new AdmissionQueue({ ...defaultAdmissionParams, maxConcurrent: 1 });
  // A long run of high alone, then low arrives with more high: low gets its 1 in 5 at once,
  // not a burst paying back all the time it was absent.
  await admissionOrder(queue, Array<PriorityClass>(40).fill('high'));
  const order = await admissionOrder(queue, [
    ...Array<PriorityClass>(10).fill('high'),
    ...Array<PriorityClass>(10).fill('low'),
  ]);
  const firstTen = order.slice(0, 10).map((name) => name.replace(/\d+$/, ''));
  const numLow = firstTen.filter((c) => c === 'low').length;
  assert.ok(numLow >= 1 && numLow <= 3, firstTen.join(' '));
});

test('x-priority: high, normal, low in any case; anything else is normal', () => {
  assert.equal(priorityOf('HIGH'), 'high');
  assert.equal(priorityOf(' low '), 'low');
  assert.equal(priorityOf(['normal']), 'normal');
  assert.equal(priorityOf('urgent'), 'normal');
  assert.equal(priorityOf(undefined), 'normal');
});
