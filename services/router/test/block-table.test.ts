import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '@tandem/common';
import { BlockTable } from '../src/kv/block-table.ts';

test('BlockTable matches a Map model through random adds, removes and growth', () => {
  const random = seededRandom(7);
  const table = new BlockTable();
  const model = new Map<string, number>();
  // A small key space forces collisions, probing and backward-shift deletes.
  const keyOf = (): [number, number] => [Math.floor(random() * 40), Math.floor(random() * 3000) >>> 0];
  for (let step = 0; step < 50_000; step++) {
    const [hi, lo] = keyOf();
    const name = `${hi}:${lo}`;
    const bits = (1 << Math.floor(random() * 32)) >>> 0;
    if (random() < 0.6) {
      table.add(hi, lo, bits);
      model.set(name, ((model.get(name) ?? 0) | bits) >>> 0);
    } else {
      table.remove(hi, lo, bits);
      const rest = ((model.get(name) ?? 0) & ~bits) >>> 0;
      if (rest === 0) model.delete(name);
      else model.set(name, rest);
    }
  }
  assert.equal(table.size, model.size);
  for (const [name, mask] of model) {
    const [hi, lo] = name.split(':').map(Number) as [number, number];
    assert.equal(table.get(hi, lo), mask, name);
  }
  const bit = 1 << 5;
  table.removeBitsEverywhere(bit);
  for (const [name, mask] of model) {
    const [hi, lo] = name.split(':').map(Number) as [number, number];
    assert.equal(table.get(hi, lo), (mask & ~bit) >>> 0, name);
  }
  assert.equal(table.count(bit), 0);
});
