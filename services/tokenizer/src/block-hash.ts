// The one block hash of the cluster: workers publish it in KV events, the router's KV index
// computes it from a prompt. Changing anything here changes every hash; keep it in one place.
//
// blockHash(parentHash, namespace, tokenIds) = FNV-1a 64-bit over the bytes
//   u32le(byteLength(utf8(namespace))) || utf8(namespace)
//   || u8(parentHash === null ? 0 : 1) || (parentHash === null ? nothing : u64le(parentHash))
//   || u32le(tokenIds[0]) || ... || u32le(tokenIds[pageSize - 1])
// with offset basis 0xcbf29ce484222325 and prime 0x100000001b3 (the standard FNV-1a 64
// parameters), as an unsigned 64-bit bigint. Only full pages are hashed; the chain starts with
// parentHash = null for a sequence's first page. The default namespace is the empty string.
// The 64-bit product is done in two 32-bit halves so no BigInt is made per token.

const encoder = new TextEncoder();

let hashHi = 0; // high 32 bits of the running FNV state
let hashLo = 0; // low 32 bits

function reset(): void {
  hashHi = 0xcbf29ce4;
  hashLo = 0x84222325;
}

function mixByte(byte: number): void {
  const lo = (hashLo ^ byte) >>> 0;
  // (hi * 2^32 + lo) * (2^40 + 0x1b3) mod 2^64
  const loProduct = lo * 0x1b3; // < 2^41, exact in a double
  const carry = Math.floor(loProduct / 4294967296);
  hashLo = loProduct >>> 0;
  hashHi = (hashHi * 0x1b3 + ((lo << 8) >>> 0) + carry) >>> 0;
}

function mixU32(value: number): void {
  mixByte(value & 0xff);
  mixByte((value >>> 8) & 0xff);
  mixByte((value >>> 16) & 0xff);
  mixByte((value >>> 24) & 0xff);
}

const namespaceBytes = new Map<string, Uint8Array>();

function utf8(namespace: string): Uint8Array {
  let bytes = namespaceBytes.get(namespace);
  if (bytes === undefined) {
    bytes = encoder.encode(namespace);
    if (namespaceBytes.size < 4096) namespaceBytes.set(namespace, bytes);
  }
  return bytes;
}

/** Hash of one full page, chained to the previous page's hash (null for the first page). */
export function blockHash(
  parentHash: bigint | null,
  namespace: string,
  tokenIds: ArrayLike<number>,
  start = 0,
  end = tokenIds.length,
): bigint {
  reset();
  const bytes = utf8(namespace);
  mixU32(bytes.length);
  for (const byte of bytes) mixByte(byte);
  if (parentHash === null) {
    mixByte(0);
  } else {
    mixByte(1);
    mixU32(Number(parentHash & 0xffffffffn));
    mixU32(Number((parentHash >> 32n) & 0xffffffffn));
  }
  for (let i = start; i < end; i++) mixU32(tokenIds[i]!);
  return (BigInt(hashHi) << 32n) | BigInt(hashLo);
}

/** The chained hashes of every full page of `tokenIds` (what the router looks up in its index). */
export function blockHashes(
  namespace: string,
  tokenIds: ArrayLike<number>,
  pageSize: number,
  parentHash: bigint | null = null,
): bigint[] {
  const hashes: bigint[] = [];
  let parent = parentHash;
  const numFullPages = Math.floor(tokenIds.length / pageSize);
  for (let page = 0; page < numFullPages; page++) {
    parent = blockHash(parent, namespace, tokenIds, page * pageSize, (page + 1) * pageSize);
    hashes.push(parent);
  }
  return hashes;
}
