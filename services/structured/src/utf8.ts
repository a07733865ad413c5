// UTF-8 for the automaton: a range of code points becomes a few sequences of byte ranges
// (the RE2 / regex-syntax construction), so a character class is matched byte by byte and a
// token that ends inside a multi-byte character leaves the automaton mid-character.

/** One byte range per position: [[lo, hi], ...] for bytes 1..n of an encoding. */
export type ByteRangeSequence = [number, number][];

const lengthLimits = [0x7f, 0x7ff, 0xffff];

export function encodeUtf8(codePoint: number): number[] {
  if (codePoint <= 0x7f) return [codePoint];
  if (codePoint <= 0x7ff) return [0xc0 | (codePoint >> 6), 0x80 | (codePoint & 0x3f)];
  if (codePoint <= 0xffff) {
    return [0xe0 | (codePoint >> 12), 0x80 | ((codePoint >> 6) & 0x3f), 0x80 | (codePoint & 0x3f)];
  }
  return [
    0xf0 | (codePoint >> 18),
    0x80 | ((codePoint >> 12) & 0x3f),
    0x80 | ((codePoint >> 6) & 0x3f),
    0x80 | (codePoint & 0x3f),
  ];
}

/** Byte-range sequences that together match exactly the code points lo..hi (no surrogates inside). */
export function utf8Sequences(lo: number, hi: number): ByteRangeSequence[] {
  const out: ByteRangeSequence[] = [];
  const stack: [number, number][] = [[lo, hi]];
  while (stack.length > 0) {
    let [start, end] = stack.pop() as [number, number];
    split: for (;;) {
      for (const limit of lengthLimits) {
        if (start <= limit && limit < end) {
          stack.push([limit + 1, end]);
          end = limit;
          continue split;
        }
      }
      if (end <= 0x7f) {
        out.push([[start, end]]);
        break;
      }
      for (let i = 1; i < 4; i++) {
        const mask = (1 << (6 * i)) - 1;
        if ((start & ~mask) !== (end & ~mask)) {
          if ((start & mask) !== 0) {
            stack.push([(start | mask) + 1, end]);
            end = start | mask;
            continue split;
          }
          if ((end & mask) !== mask) {
            stack.push([end & ~mask, end]);
            end = (end & ~mask) - 1;
            continue split;
          }
        }
      }
      const a = encodeUtf8(start);
      const b = encodeUtf8(end);
      out.push(a.map((byte, k) => [byte, b[k] as number]));
      break;
    }
  }
  return out;
}
