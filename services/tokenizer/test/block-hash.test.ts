// The cluster's block hash against a BigInt reference of its documented byte string.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { seededRandom } from '@tandem/common';
import { blockHash, blockHashes } from '../src/block-hash.ts';

function randomTokens(random: () => number, length: number, vocabSize: number): number[] {
  return Array.from({ length }, () => Math.floor(random() * vocabSize));
}

/** Reference FNV-1a 64 over the documented byte string, with BigInt arithmetic. */
function referenceHash(parent: bigint | null, namespace: string, tokens: number[]): bigint {
  const bytes: number[] = [];
  const u32 = (v: number) => bytes.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  const ns = new TextEncoder().encode(namespace);
  u32(ns.length);
  bytes.push(...ns);
  if (parent === null) bytes.push(0);
  else {
    bytes.push(1);
    for (let i = 0n; i < 8n; i++) bytes.push(Number((parent >> (8n * i)) & 0xffn));
  }
  for (const t of tokens) u32(t);
  let hash = 0xcbf29ce484222325n;
  for (const b of bytes) hash = ((hash ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return hash;
}

describe('block hash', () => {
  test('equals FNV-1a 64 over the documented bytes', () => {
    const random = seededRandom(1);
    let parent: bigint | null = null;
    for (const namespace of ['', 'tenant-a', 'ünï']) {
      for (let i = 0; i < 20; i++) {
        const tokens = randomTokens(random, 16, 200_000);
        assert.equal(blockHash(parent, namespace, tokens), referenceHash(parent, namespace, tokens));
        parent = blockHash(parent, namespace, tokens);
      }
    }
  });

  test('chains over full pages only and depends on namespace and parent', () => {
    const tokens = randomTokens(seededRandom(2), 35, 1000);
    const hashes = blockHashes('', tokens, 16);
    assert.equal(hashes.length, 2);
    assert.equal(hashes[1], blockHash(hashes[0]!, '', tokens.slice(16, 32)));
    assert.notEqual(blockHashes('x', tokens, 16)[0], hashes[0]);
    assert.notEqual(blockHash(1n, '', tokens.slice(0, 16)), hashes[0]);
  });
});
