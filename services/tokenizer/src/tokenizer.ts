// tokenizer.json through @huggingface/tokenizers, plus the chat template, loaded from one
// Hugging Face checkpoint folder. Encodes and decodes exactly as transformers' fast tokenizers.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { tokenContent } from '@tandem/common';
import { type ChatMessage, ChatTemplate, type ChatTemplateOptions, templateSource } from './chat-template.ts';
import { ChatTemplateUnusableError, TokenizerLoadError } from './errors.ts';

export interface EncodeOptions {
  /** Add the post-processor's special tokens (BOS...). Default true; false for chat prompts. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Default true. */
  skipSpecialTokens?: boolean;
}

export class TextTokenizer {
  readonly chatTemplate: ChatTemplate | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  /** Ids of added tokens marked special (what skipSpecialTokens drops). */
  readonly specialTokenIds: ReadonlySet<number>;
  private readonly tokenizer: Tokenizer;
  #maxTokenChars: number | null = null;

  constructor(
    tokenizerJson: object,
    tokenizerConfig: Record<string, unknown>,
    chatTemplateSource: string | null = null,
  ) {
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (error) {
      throw new TokenizerLoadError(`tokenizer.json is not usable: ${(error as Error).message}`, error);
    }
    this.bosToken = tokenContent(tokenizerConfig.bos_token);
    this.eosToken = tokenContent(tokenizerConfig.eos_token);
    const special = new Set<number>();
    for (const [id, token] of this.tokenizer.get_added_tokens_decoder()) if (token.special) special.add(id);
    this.specialTokenIds = special;
    const source = chatTemplateSource ?? templateSource(tokenizerConfig.chat_template);
    const specialTokens: Record<string, string> = {};
    for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const content = tokenContent(tokenizerConfig[key]);
      if (content !== null) specialTokens[key] = content;
    }
    this.chatTemplate = source === null ? null : new ChatTemplate(source, specialTokens);
  }

  /** Reads tokenizer.json, tokenizer_config.json and (when present) chat_template.jinja. */
  static async load(modelDir: string): Promise<TextTokenizer> {
    const read = async (name: string): Promise<unknown> => {
      const path = join(modelDir, name);
      try {
        return JSON.parse(await readFile(path, 'utf8'));
      } catch (error) {
        throw new TokenizerLoadError(`cannot read ${path}: ${(error as Error).message}`, error);
      }
    };
    const tokenizerJson = (await read('tokenizer.json')) as object;
    const configPath = join(modelDir, 'tokenizer_config.json');
    const config = existsSync(configPath)
      ? ((await read('tokenizer_config.json')) as Record<string, unknown>)
      : {};
    const jinjaPath = join(modelDir, 'chat_template.jinja');
    const jinja = existsSync(jinjaPath) ? await readFile(jinjaPath, 'utf8') : null;
    return new TextTokenizer(tokenizerJson, config, jinja);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(tokenIds: readonly number[], options: DecodeOptions = {}): string {
    return this.tokenizer.decode(tokenIds as number[], {
      skip_special_tokens: options.skipSpecialTokens ?? true,
    });
  }

  /** Token ids are below this: the model's vocabulary and the added tokens. */
  get vocabSize(): number {
    let size = this.tokenizer.model?.vocab.length ?? 0;
    for (const [id] of this.tokenizer.get_added_tokens_decoder()) size = Math.max(size, id + 1);
    return size;
  }

  /**
   * The most text (UTF-16 code units) one token stands for: its vocabulary entry is never shorter
   * than the text it decodes to (byte-level, metaspace, byte-fallback and word-piece entries alike).
   * A text of c code units is at least c / maxTokenChars tokens, whatever the tokenizer does.
   */
  get maxTokenChars(): number {
    if (this.#maxTokenChars === null) {
      let longest = 1;
      for (const entry of this.tokenizer.model?.vocab ?? []) longest = Math.max(longest, entry?.length ?? 0);
      for (const [, token] of this.tokenizer.get_added_tokens_decoder())
        longest = Math.max(longest, token.content.length);
      this.#maxTokenChars = longest;
    }
    return this.#maxTokenChars;
  }

  tokenToId(token: string): number | null {
    return this.tokenizer.token_to_id(token) ?? null;
  }

  idToToken(tokenId: number): string | null {
    return this.tokenizer.id_to_token(tokenId) ?? null;
  }

  /** The chat template applied to `messages` (text; BOS etc. come from the template itself). */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions): string {
    if (this.chatTemplate === null)
      throw new ChatTemplateUnusableError('this checkpoint has no chat template');
    return this.chatTemplate.render(messages, options);
  }

  /** Chat prompt ids: the template's text encoded without extra special tokens. */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }
}
