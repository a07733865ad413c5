// The vocabulary's tokens as a byte trie laid out in depth-first order, so that a walk can
// skip a whole subtree (every token sharing a dead prefix) with one jump, and the tokens under
// a node are one contiguous range of `tokenIds`.
import type { Vocabulary } from './vocabulary.ts';

export class TokenTrie {
  /** Node 0 is the root (the empty prefix). */
  readonly numNodes: number;
  /** [numNodes] the byte leading into the node (0 for the root) */
  readonly byte: Uint8Array;
  /** [numNodes] bytes from the root (0 for the root) */
  readonly depth: Uint16Array;
  /** [numNodes] the first node after the node's subtree */
  readonly subtreeEnd: Int32Array;
  /** [numNodes] tokenIds[tokensStart, ownEnd) end exactly here, [ownEnd, tokensEnd) below */
  readonly tokensStart: Int32Array;
  readonly ownEnd: Int32Array;
  readonly tokensEnd: Int32Array;
  /** Grammar tokens (non-empty bytes) in depth-first order. */
  readonly tokenIds: Int32Array;
  readonly maxDepth: number;
  /** [numNodes * 8] the bytes (256 bits) that occur below each node (its own byte excluded) */
  readonly bytesBelow: Uint32Array;
  /** [numNodes] the longest token below the node minus the node's depth */
  readonly depthBelow: Uint16Array;

  constructor(vocabulary: Vocabulary) {
    const { tokenBytes } = vocabulary;
    const ids: number[] = [];
    for (let id = 0; id < tokenBytes.length; id++) if ((tokenBytes[id]?.length ?? 0) > 0) ids.push(id);
    ids.sort((a, b) => compareBytes(tokenBytes[a] as Uint8Array, tokenBytes[b] as Uint8Array));
    const byte: number[] = [0];
    const depth: number[] = [0];
    const subtreeEnd: number[] = [0];
    const tokensStart: number[] = [0];
    const ownEnd: number[] = [0];
    const tokensEnd: number[] = [0];
    const path: number[] = [0]; // node at each depth of the current token
    let previous: Uint8Array = new Uint8Array(0);
    let maxDepth = 0;
    const close = (node: number, tokenIndex: number): void => {
      subtreeEnd[node] = byte.length;
      tokensEnd[node] = tokenIndex;
    };
    ids.forEach((id, index) => {
      const bytes = tokenBytes[id] as Uint8Array;
      let common = 0;
      while (common < bytes.length && common < previous.length && bytes[common] === previous[common])
        common++;
      while (path.length - 1 > common) close(path.pop() as number, index);
      for (let d = common; d < bytes.length; d++) {
        const node = byte.length;
        byte.push(bytes[d] as number);
        depth.push(d + 1);
        subtreeEnd.push(0);
        tokensStart.push(index);
        ownEnd.push(index);
        tokensEnd.push(0);
        path.push(node);
      }
      ownEnd[path[path.length - 1] as number] = index + 1;
      if (bytes.length > maxDepth) maxDepth = bytes.length;
      previous = bytes;
    });
    while (path.length > 0) close(path.pop() as number, ids.length);
    this.numNodes = byte.length;
    this.byte = Uint8Array.from(byte);
    this.depth = Uint16Array.from(depth);
    this.subtreeEnd = Int32Array.from(subtreeEnd);
    this.tokensStart = Int32Array.from(tokensStart);
    this.ownEnd = Int32Array.from(ownEnd);
    this.tokensEnd = Int32Array.from(tokensEnd);
    this.tokenIds = Int32Array.from(ids);
    this.maxDepth = maxDepth;
    // Children come after their parent in depth-first order, so a backward pass folds each
    // node's bytes into its parent.
    const below = new Uint32Array(this.numNodes * 8);
    const parentAt: number[] = [];
    const parentOf = new Int32Array(this.numNodes).fill(-1);
    for (let node = 1; node < this.numNodes; node++) {
      const d = this.depth[node] as number;
      parentAt[d] = node;
      parentOf[node] = d === 1 ? 0 : (parentAt[d - 1] as number);
    }
    for (let node = this.numNodes - 1; node >= 1; node--) {
      const p = parentOf[node] as number;
      const b = this.byte[node] as number;
      below[p * 8 + (b >>> 5)] = (below[p * 8 + (b >>> 5)] as number) | (1 << (b & 31));
      for (let w = 0; w < 8; w++)
        below[p * 8 + w] = (below[p * 8 + w] as number) | (below[node * 8 + w] as number);
    }
    this.bytesBelow = below;
    const depthBelow = new Uint16Array(this.numNodes);
    for (let node = this.numNodes - 1; node >= 1; node--) {
      const p = parentOf[node] as number;
      depthBelow[p] = Math.max(depthBelow[p] as number, (depthBelow[node] as number) + 1);
    }
    this.depthBelow = depthBelow;
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}
