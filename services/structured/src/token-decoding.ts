// How a tokenizer.json token string stands for bytes: byte-level BPE (GPT-2's byte-to-unicode
// map, Llama 3 / Qwen) or Metaspace / SentencePiece (`▁` is a space, `<0xNN>` byte-fallback
// pieces are single bytes, Llama 2 / Mistral).

export type TokenEncoding =
  | { type: 'byte_level' }
  | { type: 'metaspace'; replacement: string; byteFallback: boolean };

/** GPT-2's bytes_to_unicode, inverted: the printable stand-in character -> its byte. */
function buildByteLevelTable(): Map<number, number> {
  const bytes: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bytes.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bytes.push(b);
  for (let b = 0xae; b <= 0xff; b++) bytes.push(b);
  const chars = [...bytes];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      chars.push(256 + extra);
      extra++;
    }
  }
  const table = new Map<number, number>();
  bytes.forEach((b, i) => {
    table.set(chars[i] as number, b);
  });
  return table;
}

const byteLevelTable = buildByteLevelTable();
const textEncoder = new TextEncoder();
const byteFallbackPattern = /^<0x([0-9A-Fa-f]{2})>$/;

/** The bytes a token stands for, or null when its string is not a valid token of this encoding. */
export function tokenToBytes(token: string, encoding: TokenEncoding): Uint8Array | null {
  if (encoding.type === 'byte_level') {
    const out = new Uint8Array(token.length);
    let n = 0;
    for (const ch of token) {
      const byte = byteLevelTable.get(ch.codePointAt(0) ?? -1);
      if (byte === undefined) return null;
      out[n++] = byte;
    }
    return out.subarray(0, n);
  }
  if (encoding.byteFallback) {
    const match = byteFallbackPattern.exec(token);
    if (match !== null) return Uint8Array.of(Number.parseInt(match[1] as string, 16));
  }
  return textEncoder.encode(token.replaceAll(encoding.replacement, ' '));
}

interface DecoderJson {
  type?: unknown;
  replacement?: unknown;
  decoders?: unknown;
  pattern?: { String?: unknown };
  content?: unknown;
}

/** The encoding a tokenizer.json's decoder describes, or null when it is neither kind. */
export function detectEncoding(decoder: unknown, byteFallbackModel: boolean): TokenEncoding | null {
  const d = (decoder ?? {}) as DecoderJson;
  if (d.type === 'ByteLevel') return { type: 'byte_level' };
  if (d.type === 'Metaspace') {
    const replacement = typeof d.replacement === 'string' ? d.replacement : '\u2581';
    return { type: 'metaspace', replacement, byteFallback: byteFallbackModel };
  }
  if (d.type === 'Sequence' && Array.isArray(d.decoders)) {
    const parts = d.decoders as DecoderJson[];
    if (parts.some((p) => p.type === 'ByteLevel')) return { type: 'byte_level' };
    const metaspace = parts.find((p) => p.type === 'Metaspace');
    const replace = parts.find((p) => p.type === 'Replace' && p.content === ' ');
    const replacement =
      metaspace !== undefined
        ? typeof metaspace.replacement === 'string'
          ? metaspace.replacement
          : '\u2581'
        : typeof replace?.pattern?.String === 'string'
          ? replace.pattern.String
          : null;
    if (replacement === null) return null;
    const byteFallback = byteFallbackModel || parts.some((p) => p.type === 'ByteFallback');
    return { type: 'metaspace', replacement, byteFallback };
  }
  return null;
}
