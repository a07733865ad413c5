// The served checkpoint as the router needs it: tokenizer, chat template, incremental
// detokenizer (all from @tandem/tokenizer, loaded from the same folder the workers serve), the
// context length, and the names clients may use for it.
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ConfigError } from '@tandem/common';
import { IncrementalDetokenizer, TextTokenizer } from '@tandem/tokenizer';
import { UnsupportedError } from './errors.ts';
import type { IncrementalDecoder } from './openai/choice-output.ts';
import type { ChatMessage, ChatRequest } from './openai/request.ts';
import { TokenizePool } from './tokenize-pool.ts';
import {
  detectToolCallFormat,
  type ToolCallFormat,
  type ToolCallFormatName,
  templateRendersTools,
  toolCallFormat,
} from './tools/formats.ts';

/**
 * Slack on the untokenized-length bound: a normalizer (NFC, stripping) may shorten a text before
 * it is split, so a text is refused unread only when it could not fit even at half its length.
 */
const normalizationSlack = 2;

export interface ServedModel {
  /** What /v1/models lists and requests must name. */
  name: string;
  /** Also accepted in requests (the folder name when --served-model-name renames it). */
  aliases: readonly string[];
  dir: string;
  /** Longest sequence (prompt + output) the model takes. */
  maxModelLen: number;
  /** Token ids are below this (config.json's vocab_size, as the workers check it). */
  vocabSize: number;
  createdAtS: number;
  tokenizer: TextTokenizer;
  /**
   * A text longer than this (UTF-16 code units) cannot fit the context whatever it encodes to
   * (longest token x context, with slack): it is refused before it is tokenized.
   */
  maxPromptChars: number;
  /** Chat template + tokenizer; long texts are tokenized off the event loop. */
  encodeChat(request: ChatRequest): Promise<number[]>;
  encodeText(text: string): Promise<number[]>;
  decode(tokenIds: readonly number[]): string;
  createDecoder(skipSpecialTokens: boolean): IncrementalDecoder;
  /** One token as text (logprob entries). */
  renderToken(tokenId: number): string;
  /** How the model writes tool calls (from its chat template or --tool-call-parser), or null. */
  toolFormat: ToolCallFormat | null;
  /** Stops the tokenize threads. */
  close(): Promise<void>;
}

/** `auto`: from the chat template (tools/formats.ts); else that format. */
export type ToolCallParserChoice = 'auto' | ToolCallFormatName;

/** Whether a request's tools are in play: given, and tool_choice is not none. */
export function usesTools(request: ChatRequest): boolean {
  return request.tools.tools.length > 0 && request.tools.choice.type !== 'none';
}

/** A message as chat templates read it (transformers' / vLLM's shape: arguments as objects). */
function templateMessage(m: ChatMessage): Record<string, unknown> & { role: string; content: unknown } {
  const message: Record<string, unknown> & { role: string; content: unknown } = {
    role: m.role,
    content: m.content,
  };
  if (m.name !== null) message.name = m.name;
  if (m.toolCalls !== null) {
    message.tool_calls = m.toolCalls.map((call) => ({
      id: call.id,
      type: 'function',
      function: { name: call.name, arguments: call.arguments },
    }));
  }
  if (m.toolCallId !== null) message.tool_call_id = m.toolCallId;
  return message;
}

export async function loadServedModel(
  dir: string,
  servedName: string | null,
  tokenizeThreads = 2,
  toolCallParser: ToolCallParserChoice = 'auto',
): Promise<ServedModel> {
  const absolute = resolve(dir);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await readFile(join(absolute, 'config.json'), 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new ConfigError(`--model ${dir}: cannot read config.json`, { cause, param: '--model' });
  }
  const maxPositions = config.max_position_embeddings;
  const maxModelLen = typeof maxPositions === 'number' && maxPositions > 0 ? maxPositions : 2048;
  const tokenizer = await TextTokenizer.load(absolute);
  const configVocab = config.vocab_size;
  const vocabSize =
    typeof configVocab === 'number' && Number.isSafeInteger(configVocab) && configVocab > 0
      ? configVocab
      : tokenizer.vocabSize;
  const pool = new TokenizePool({ modelDir: absolute, numThreads: tokenizeThreads }, tokenizer);
  const folderName = basename(absolute);
  const name = servedName ?? folderName;
  const tokenText = new Map<number, string>();
  const templateSource = tokenizer.chatTemplate?.source ?? null;
  const toolFormat = !templateRendersTools(templateSource)
    ? null
    : toolCallParser === 'auto'
      ? detectToolCallFormat(templateSource)
      : toolCallFormat(toolCallParser);
  return {
    name,
    aliases: name === folderName ? [] : [folderName],
    dir: absolute,
    maxModelLen,
    vocabSize,
    createdAtS: Math.floor(Date.now() / 1000),
    tokenizer,
    maxPromptChars: normalizationSlack * maxModelLen * tokenizer.maxTokenChars,
    encodeChat: async (request) => {
      const messages = request.messages.map(templateMessage);
      const variables: Record<string, unknown> = { ...request.chatTemplateKwargs };
      if (usesTools(request)) {
        // A template that never reads `tools` would silently hide them from the model.
        if (toolFormat === null) {
          throw new UnsupportedError(`the chat template of model '${name}' does not render tools`, 'tools');
        }
        variables.tools = request.tools.tools.map((tool) => tool.raw);
      }
      // A template that rejects these messages (roles that must alternate...) throws a
      // ChatTemplateError: a 400 naming `messages`.
      let text = tokenizer.applyChatTemplate(messages, {
        addGenerationPrompt: request.addGenerationPrompt,
        variables,
      });
      if (request.continueFinalMessage) {
        // Cut the template's end-of-turn after the final (assistant) message, as vLLM does.
        const last = request.messages.at(-1)!.content;
        const at = text.lastIndexOf(last);
        if (at !== -1) text = text.slice(0, at + last.length);
      }
      return pool.encode(text, false);
    },
    encodeText: (text) => pool.encode(text, true),
    decode: (tokenIds) => tokenizer.decode(tokenIds),
    createDecoder: (skipSpecialTokens) => {
      const detokenizer = new IncrementalDetokenizer(tokenizer, { skipSpecialTokens });
      return {
        push: (tokenId) => detokenizer.push([tokenId]),
        pushMany: (tokenIds) => detokenizer.push(tokenIds),
        flush: () => detokenizer.flush(),
      };
    },
    toolFormat,
    renderToken: (tokenId) => {
      const cached = tokenText.get(tokenId);
      if (cached !== undefined) return cached;
      let text = tokenizer.decode([tokenId], { skipSpecialTokens: false });
      // Metaspace decoders drop a first token's leading space; alone, a token keeps it.
      if (tokenizer.idToToken(tokenId)?.startsWith('\u2581') === true && !text.startsWith(' '))
        text = ` ${text}`;
      tokenText.set(tokenId, text);
      return text;
    },
    close: () => pool.close(),
  };
}
