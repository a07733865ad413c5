// The --device flag as every command spells it: cpu, cuda (device 0), cuda:N or auto.
import { ConfigError } from '@tandem/common';
import type { Device } from './types.ts';

export function parseDevice(text: string, flag = '--device'): Device | 'auto' {
  if (text === 'cpu' || text === 'auto') return text;
  if (/^cuda:\d+$/.test(text)) return text as `cuda:${number}`;
  if (text === 'cuda') return 'cuda:0';
  throw new ConfigError(`${flag} must be cpu, cuda:N or auto, got '${text}'`, { param: flag });
}
