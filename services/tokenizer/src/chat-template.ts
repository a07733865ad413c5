// Chat templates from tokenizer_config.json (or chat_template.jinja), rendered by
// @huggingface/jinja the way transformers' apply_chat_template renders them.

import { Template } from '@huggingface/jinja';
import { ChatTemplateError, ChatTemplateUnusableError } from './errors.ts';

export interface ChatMessage {
  role: string;
  content: unknown; // a string, or OpenAI-style content parts; passed to the template as is
  [field: string]: unknown;
}

export interface ChatTemplateOptions {
  addGenerationPrompt: boolean;
  /** Extra template variables (tools, documents, enable_thinking...). */
  variables?: Record<string, unknown>;
}

export class ChatTemplate {
  readonly source: string;
  private readonly template: Template;
  private readonly specialTokens: Record<string, string>;

  /** specialTokens: bos_token, eos_token, ... as strings, visible to the template. */
  constructor(source: string, specialTokens: Record<string, string>) {
    this.source = source;
    this.specialTokens = specialTokens;
    try {
      this.template = new Template(source);
    } catch (error) {
      throw new ChatTemplateUnusableError(`the chat template does not parse: ${messageOf(error)}`, error);
    }
  }

  render(messages: readonly ChatMessage[], options: ChatTemplateOptions): string {
    try {
      return this.template.render({
        ...this.specialTokens,
        ...options.variables,
        messages,
        add_generation_prompt: options.addGenerationPrompt,
      });
    } catch (error) {
      throw new ChatTemplateError(`the chat template failed: ${messageOf(error)}`, error);
    }
  }
}

/** The template source of a tokenizer_config.json `chat_template` field (string or named list). */
export function templateSource(chatTemplate: unknown, name = 'default'): string | null {
  if (typeof chatTemplate === 'string') return chatTemplate;
  if (Array.isArray(chatTemplate)) {
    const named = chatTemplate as { name?: unknown; template?: unknown }[];
    const entry = named.find((t) => t.name === name) ?? named[0];
    return typeof entry?.template === 'string' ? entry.template : null;
  }
  return null;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
