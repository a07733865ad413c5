// Options `tandem generate` and `tandem score` share: which checkpoint, where, in what pages.
import { ConfigError, type OptionSpec } from '@tandem/common';

export const modelOptions = {
  model: {
    type: 'string',
    default: null,
    valueName: 'DIR',
    doc: 'Hugging Face checkpoint folder (required)',
  },
  device: { type: 'string', default: 'cpu', valueName: 'cpu|cuda:N|auto', doc: 'where it computes' },
  'page-size': { type: 'int', default: 16, min: 1, doc: 'tokens per KV page' },
  'rope-frequency-rounding': {
    type: 'string',
    default: 'none',
    choices: ['none', 'stored-dtype'],
    doc: 'RoPE inv_freq of a bf16/f16 checkpoint: float32 as from_pretrained keeps it (none), or rounded as after .to(bfloat16)',
  },
  json: { type: 'boolean', default: false, doc: 'one JSON line on stdout' },
} as const satisfies Record<string, OptionSpec>;

/** Comma-separated token ids ('5,9,13'). */
export function parseIds(text: string | null, flag: string): number[] {
  if (text === null) throw new ConfigError(`${flag} is required`, { param: flag });
  const parts = text.split(',').map((s) => s.trim());
  if (text.trim() === '' || parts.some((p) => !/^\d+$/.test(p))) {
    throw new ConfigError(`${flag} must be comma-separated non-negative integers, got "${text}"`, {
      param: flag,
    });
  }
  return parts.map(Number);
}

export function requireModel(model: string | null): string {
  if (model === null) throw new ConfigError('--model DIR is required', { param: '--model' });
  return model;
}
