// A model's vocabulary as grammars see it: token id -> the bytes it decodes to, which ids a
// grammar may never produce (special tokens), the EOS ids, and the alphabet: the
// characters whose every string some token sequence can spell. Built from a checkpoint's
// tokenizer.json (+ tokenizer_config.json, config.json, generation_config.json).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tokenContent } from '@tandem/common';
import { CharSet } from './char-set.ts';
import { VocabularyError } from './errors.ts';
import { detectEncoding, type TokenEncoding, tokenToBytes } from './token-decoding.ts';
import { encodeUtf8 } from './utf8.ts';

const textEncoder = new TextEncoder();

export interface VocabularyOptions {
  /** Mask length in tokens (the model's vocab_size, which may exceed the tokenizer's). */
  vocabSize?: number;
  /** Ids that end a sequence; default: tokenizer_config's eos_token. */
  eosTokenIds?: readonly number[];
}

/** A Vocabulary as structured-clone data (toTransfer / fromTransfer). */
export interface VocabularyTransfer {
  encoding: TokenEncoding;
  size: number;
  /** Every token's bytes, concatenated; token id's are data[offsets[id], offsets[id + 1]). */
  data: Uint8Array;
  offsets: Int32Array;
  /** 1 where the token is never grammar text. */
  isNull: Uint8Array;
  eosTokenIds: Int32Array;
}

interface TokenizerJson {
  model?: { type?: unknown; vocab?: unknown; byte_fallback?: unknown; unk_token?: unknown; unk_id?: unknown };
  decoder?: unknown;
  added_tokens?: { id: number; content: string; special?: boolean }[];
}

export class Vocabulary {
  readonly encoding: TokenEncoding;
  /** Mask length: ids 0..size-1. */
  readonly size: number;
  /** Per id: the bytes the token decodes to, or null where a grammar may never produce it. */
  readonly tokenBytes: readonly (Uint8Array | null)[];
  readonly eosTokenIds: Int32Array;
  /** Characters any string of which some token sequence spells (grammars are cut down to these). */
  readonly alphabet: CharSet;
  /** The longest token in bytes. */
  readonly maxTokenBytes: number;

  constructor(
    encoding: TokenEncoding,
    size: number,
    tokenBytes: readonly (Uint8Array | null)[],
    eosTokenIds: readonly number[],
  ) {
    this.encoding = encoding;
    this.size = size;
    this.eosTokenIds = Int32Array.from(eosTokenIds.filter((id) => id >= 0 && id < size));
    // EOS ends a sequence wherever it comes from; it is never text a grammar reads.
    if (this.eosTokenIds.some((id) => tokenBytes[id] !== null)) {
      const copy = [...tokenBytes];
      for (const id of this.eosTokenIds) copy[id] = null;
      this.tokenBytes = copy;
    } else this.tokenBytes = tokenBytes;
    this.alphabet = spellableAlphabet(this.tokenBytes);
    let longest = 0;
    for (const bytes of this.tokenBytes) if (bytes !== null && bytes.length > longest) longest = bytes.length;
    this.maxTokenBytes = longest;
  }

  /** This vocabulary as plain data for another thread (token bytes packed into one buffer). */
  toTransfer(): VocabularyTransfer {
    let total = 0;
    for (const bytes of this.tokenBytes) total += bytes?.length ?? 0;
    const data = new Uint8Array(total);
    const offsets = new Int32Array(this.size + 1);
    const isNull = new Uint8Array(this.size);
    let at = 0;
    for (let id = 0; id < this.size; id++) {
      offsets[id] = at;
      const bytes = this.tokenBytes[id] ?? null;
      if (bytes === null) isNull[id] = 1;
      else {
        data.set(bytes, at);
        at += bytes.length;
      }
    }
    offsets[this.size] = at;
    return { encoding: this.encoding, size: this.size, data, offsets, isNull, eosTokenIds: this.eosTokenIds };
  }

  static fromTransfer(transfer: VocabularyTransfer): Vocabulary {
    const tokenBytes: (Uint8Array | null)[] = new Array(transfer.size);
    for (let id = 0; id < transfer.size; id++) {
      tokenBytes[id] =
        transfer.isNull[id] === 1
          ? null
          : transfer.data.subarray(transfer.offsets[id] as number, transfer.offsets[id + 1] as number);
    }
    return new Vocabulary(transfer.encoding, transfer.size, tokenBytes, [...transfer.eosTokenIds]);
  }

  /** From parsed tokenizer.json and tokenizer_config.json. */
  static fromTokenizerJson(
    tokenizerJson: unknown,
    tokenizerConfig: Record<string, unknown> = {},
    options: VocabularyOptions = {},
  ): Vocabulary {
    const parsed = parseTokenizer(tokenizerJson);
    const size = options.vocabSize ?? parsed.maxId + 1;
    if (size <= parsed.maxId) {
      throw new VocabularyError(`vocabSize ${size} is below the tokenizer's largest id ${parsed.maxId}`, {
        param: 'vocabSize',
      });
    }
    const tokenBytes: (Uint8Array | null)[] = new Array(size).fill(null);
    for (const [id, piece] of parsed.pieces) {
      if (parsed.added.has(id) || id === parsed.unkId) continue;
      tokenBytes[id] = tokenToBytes(piece, parsed.encoding);
    }
    // A non-special added token (Qwen's <tool_call>, </tool_call>) is text: it decodes to its
    // content and the tokenizer turns that text into it, so a grammar may write it with it (a
    // model writes its tool-call tags with those ids, not spelled out).
    for (const [id, content] of parsed.added) {
      if (!parsed.special.has(id) && id !== parsed.unkId && content.length > 0)
        tokenBytes[id] = textEncoder.encode(content);
    }
    const eosName = tokenContent(tokenizerConfig.eos_token);
    const eosId = eosName === null ? undefined : parsed.ids.get(eosName);
    const eosTokenIds = options.eosTokenIds ?? (eosId === undefined ? [] : [eosId]);
    return new Vocabulary(parsed.encoding, size, tokenBytes, eosTokenIds);
  }

  /** Reads a Hugging Face checkpoint folder; EOS ids come from every config that names them. */
  static async load(modelDir: string, options: VocabularyOptions = {}): Promise<Vocabulary> {
    const read = async (name: string): Promise<Record<string, unknown> | null> => {
      const path = join(modelDir, name);
      if (!existsSync(path)) return null;
      try {
        return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
      } catch (error) {
        throw new VocabularyError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
      }
    };
    const tokenizerJson = await read('tokenizer.json');
    if (tokenizerJson === null) throw new VocabularyError(`${modelDir} has no tokenizer.json`);
    const tokenizerConfig = (await read('tokenizer_config.json')) ?? {};
    const config = (await read('config.json')) ?? {};
    const generationConfig = (await read('generation_config.json')) ?? {};
    const parsed = parseTokenizer(tokenizerJson);
    const eos = new Set<number>();
    const eosName = tokenContent(tokenizerConfig.eos_token);
    const eosId = eosName === null ? undefined : parsed.ids.get(eosName);
    if (eosId !== undefined) eos.add(eosId);
    for (const source of [config.eos_token_id, generationConfig.eos_token_id]) {
      for (const id of [source].flat()) if (typeof id === 'number') eos.add(id);
    }
    const modelSize = typeof config.vocab_size === 'number' ? config.vocab_size : 0;
    return Vocabulary.fromTokenizerJson(tokenizerJson, tokenizerConfig, {
      vocabSize: options.vocabSize ?? Math.max(modelSize, parsed.maxId + 1),
      eosTokenIds: options.eosTokenIds ?? [...eos],
    });
  }
}

interface ParsedTokenizer {
  encoding: TokenEncoding;
  pieces: Map<number, string>;
  added: Map<number, string>;
  /** Added tokens marked special (never text). */
  special: Set<number>;
  /** piece or added-token content -> id */
  ids: Map<string, number>;
  maxId: number;
  unkId: number;
}

function parseTokenizer(tokenizerJson: unknown): ParsedTokenizer {
  const json = tokenizerJson as TokenizerJson;
  const model = json.model ?? {};
  const encoding = detectEncoding(json.decoder, model.byte_fallback === true);
  if (encoding === null) {
    throw new VocabularyError('tokenizer.json: the decoder is neither ByteLevel nor Metaspace-style', {
      param: 'decoder',
    });
  }
  const pieces = modelPieces(model);
  const added = new Map<number, string>();
  const special = new Set<number>();
  for (const token of json.added_tokens ?? []) {
    added.set(token.id, token.content);
    // transformers' default for an added token without the flag is special.
    if (token.special !== false) special.add(token.id);
  }
  let maxId = -1;
  const ids = new Map<string, number>();
  for (const [id, piece] of pieces) {
    maxId = Math.max(maxId, id);
    ids.set(piece, id);
  }
  for (const [id, content] of added) {
    maxId = Math.max(maxId, id);
    ids.set(content, id);
  }
  return { encoding, pieces, added, special, ids, maxId, unkId: unknownId(model, pieces) };
}

/** id -> piece string for BPE (vocab object) and Unigram (vocab array) models. */
function modelPieces(model: NonNullable<TokenizerJson['model']>): Map<number, string> {
  const pieces = new Map<number, string>();
  if (Array.isArray(model.vocab)) {
    model.vocab.forEach((entry: unknown, id: number) => {
      if (Array.isArray(entry) && typeof entry[0] === 'string') pieces.set(id, entry[0]);
    });
  } else if (typeof model.vocab === 'object' && model.vocab !== null) {
    for (const [piece, id] of Object.entries(model.vocab)) if (typeof id === 'number') pieces.set(id, piece);
  } else {
    throw new VocabularyError('tokenizer.json: model.vocab is missing', { param: 'model.vocab' });
  }
  return pieces;
}

function unknownId(model: NonNullable<TokenizerJson['model']>, pieces: Map<number, string>): number {
  if (typeof model.unk_id === 'number') return model.unk_id;
  if (typeof model.unk_token === 'string') {
    for (const [id, piece] of pieces) if (piece === model.unk_token) return id;
  }
  return -1;
}

/**
 * The characters whose UTF-8 bytes split into whole tokens: every string over them is spellable.
 * With all 256 single-byte tokens that is every character.
 */
function spellableAlphabet(tokenBytes: readonly (Uint8Array | null)[]): CharSet {
  const singleBytes = new Set<number>();
  for (const bytes of tokenBytes) if (bytes?.length === 1) singleBytes.add(bytes[0] as number);
  if (singleBytes.size === 256) return CharSet.all;
  const spellings = new Set<string>();
  const candidates = new Set<number>();
  const decoder = new TextDecoder('utf-8', { fatal: false });
  for (const bytes of tokenBytes) {
    if (bytes === null || bytes.length === 0) continue;
    spellings.add(String.fromCharCode(...bytes));
    for (const ch of decoder.decode(bytes)) candidates.add(ch.codePointAt(0) ?? 0);
  }
  const spellable: number[] = [];
  for (const codePoint of candidates) {
    const key = String.fromCharCode(...encodeUtf8(codePoint));
    if (codePoint !== 0xfffd && splitsIntoTokens(key, spellings)) spellable.push(codePoint);
  }
  return CharSet.of(...spellable);
}

function splitsIntoTokens(bytes: string, spellings: ReadonlySet<string>): boolean {
  const reachable = [true];
  for (let end = 1; end <= bytes.length; end++) {
    reachable[end] = false;
    for (let start = 0; start < end; start++) {
      if (reachable[start] === true && spellings.has(bytes.slice(start, end))) {
        reachable[end] = true;
        break;
      }
    }
  }
  return reachable[bytes.length] === true;
}
