// The KV layout both sides must agree on, and page copies turned into byte ranges.
// Pool memory order: [numLayers][2 (K, V)][numPages][pageSize][numKvHeads][headDim] in dtype.

/** Same values as the executor's KvDType. */
export type KvDType = 'float32' | 'bfloat16' | 'float16';

/** The fields of the executor's KvLayout this package reads (structurally compatible with it). */
export interface KvPoolLayout {
  device: string;
  dtype: KvDType;
  numPages: number;
  pageSize: number;
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  totalBytes: number;
  baseAddress: bigint;
}

export interface KvSpec {
  /** Checkpoint identity (e.g. its folder name); at most 127 bytes. */
  model: string;
  dtype: KvDType;
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  /** Tokens per page. */
  pageSize: number;
  /** Pages in this side's pool (may differ between the sides). */
  numPages: number;
}

const dtypeBytes: Record<KvDType, number> = { float32: 4, bfloat16: 2, float16: 2 };

export function specFromLayout(model: string, layout: KvPoolLayout): KvSpec {
  return {
    model,
    dtype: layout.dtype,
    numLayers: layout.numLayers,
    numKvHeads: layout.numKvHeads,
    headDim: layout.headDim,
    pageSize: layout.pageSize,
    numPages: layout.numPages,
  };
}

/** Bytes of one page of K (or V) in one layer. */
export function pageBytesOf(spec: KvSpec): number {
  return spec.pageSize * spec.numKvHeads * spec.headDim * dtypeBytes[spec.dtype];
}

/** Bytes of the whole pool: numLayers * 2 * numPages * pageBytes. */
export function poolBytesOf(spec: KvSpec): number {
  return spec.numLayers * 2 * spec.numPages * pageBytesOf(spec);
}

/** Bytes a page copy moves: K and V of every listed layer. */
export function pageCopyBytes(spec: KvSpec, numPages: number, numLayers: number = spec.numLayers): number {
  return numPages * numLayers * 2 * pageBytesOf(spec);
}

/**
 * [srcOffset, dstOffset, length] triples for copying srcPages[i] -> dstPages[i] (K and V) in each
 * layer, runs of consecutive pages merged into one range.
 */
export function pageRanges(
  spec: KvSpec,
  remoteNumPages: number,
  srcPages: ArrayLike<number>,
  dstPages: ArrayLike<number>,
  layers: readonly number[],
): BigUint64Array {
  const pageBytes = pageBytesOf(spec);
  const out: bigint[] = [];
  for (const layer of layers) {
    for (let kv = 0; kv < 2; kv++) {
      const srcBase = (layer * 2 + kv) * spec.numPages;
      const dstBase = (layer * 2 + kv) * remoteNumPages;
      let runSrc = -1;
      let runDst = -1;
      let runPages = 0;
      const flush = (): void => {
        if (runPages === 0) return;
        out.push(BigInt(runSrc * pageBytes), BigInt(runDst * pageBytes), BigInt(runPages * pageBytes));
        runPages = 0;
      };
      for (let i = 0; i < srcPages.length; i++) {
        const src = srcBase + srcPages[i]!;
        const dst = dstBase + dstPages[i]!;
        if (runPages > 0 && src === runSrc + runPages && dst === runDst + runPages) {
          runPages++;
          continue;
        }
        flush();
        runSrc = src;
        runDst = dst;
        runPages = 1;
      }
      flush();
    }
  }
  return BigUint64Array.from(out);
}
