// `tandem generate`: run a checkpoint on token ids and print the generated ids.
//   tandem generate --model DIR --prompt-ids 5,9,13 --max-tokens 24 --temperature 0 --ignore-eos --json
// prints {"token_ids":[...]} (the generated ids only; with --logprobs also "logprobs").
import { parseArgs } from 'node:util';
import { ConfigError, TandemError } from '@tandem/common';
import { defaultSampling, Executor, type ExecutorOptions, type SamplingParams } from '@tandem/executor';

const usage = `usage: tandem generate --model DIR --prompt-ids 5,9,13 [--max-tokens 16] [--temperature 1.0]
                       [--top-k K] [--top-p P] [--min-p P] [--seed N] [--ignore-eos] [--logprobs]
                       [--device cpu|cuda:N|auto] [--page-size 16]
                       [--rope-frequency-rounding none|stored-dtype] [--json]`;

export function parseIds(text: string, flag: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (text.trim() === '' || parts.some((p) => !/^\d+$/.test(p))) {
    throw new ConfigError(`${flag} must be comma-separated non-negative integers, got "${text}"`);
  }
  return parts.map(Number);
}

export function parseNumber(
  text: string | undefined,
  flag: string,
  fallback: number,
  integer = false,
): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new ConfigError(`${flag} must be ${integer ? 'an integer' : 'a number'}, got "${text}"`);
  }
  return value;
}

export function parseDevice(text: string | undefined): ExecutorOptions['device'] {
  if (text === undefined || text === 'cpu') return 'cpu';
  if (text === 'auto') return 'auto';
  if (/^cuda:\d+$/.test(text)) return text as `cuda:${number}`;
  throw new ConfigError(`--device must be cpu, cuda:N or auto, got "${text}"`);
}

/** --rope-frequency-rounding: see ExecutorOptions.ropeFrequencyRounding. */
export function parseRopeRounding(text: string | undefined): 'none' | 'stored-dtype' {
  if (text === undefined || text === 'none' || text === 'stored-dtype') return text ?? 'none';
  throw new ConfigError(`--rope-frequency-rounding must be none or stored-dtype, got "${text}"`);
}

interface GenerateArgs {
  modelDir: string;
  promptIds: number[];
  maxTokens: number;
  sampling: SamplingParams;
  ignoreEos: boolean;
  logprobs: boolean;
  device: ExecutorOptions['device'];
  pageSize: number;
  ropeFrequencyRounding: 'none' | 'stored-dtype';
  json: boolean;
}

function parse(argv: string[]): GenerateArgs {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      model: { type: 'string' },
      'prompt-ids': { type: 'string' },
      'max-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      'min-p': { type: 'string' },
      seed: { type: 'string' },
      'ignore-eos': { type: 'boolean', default: false },
      logprobs: { type: 'boolean', default: false },
      device: { type: 'string' },
      'page-size': { type: 'string' },
      'rope-frequency-rounding': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.model === undefined) throw new ConfigError('--model DIR is required');
  if (values['prompt-ids'] === undefined) throw new ConfigError('--prompt-ids is required');
  const maxTokens = parseNumber(values['max-tokens'], '--max-tokens', 16, true);
  if (maxTokens < 1) throw new ConfigError('--max-tokens must be at least 1');
  const temperature = parseNumber(values.temperature, '--temperature', 1.0);
  if (temperature < 0) throw new ConfigError('--temperature must be >= 0');
  const topP = parseNumber(values['top-p'], '--top-p', 1);
  if (!(topP > 0 && topP <= 1)) throw new ConfigError('--top-p must be in (0, 1]');
  const minP = parseNumber(values['min-p'], '--min-p', 0);
  if (!(minP >= 0 && minP <= 1)) throw new ConfigError('--min-p must be in [0, 1]');
  const seedText = values.seed;
  const seed = seedText === undefined ? null : parseNumber(seedText, '--seed', 0, true);
  if (seed !== null && seed < 0) throw new ConfigError('--seed must be >= 0');
  const pageSize = parseNumber(values['page-size'], '--page-size', 16, true);
  if (pageSize < 1) throw new ConfigError('--page-size must be at least 1');
  return {
    modelDir: values.model,
    promptIds: parseIds(values['prompt-ids'], '--prompt-ids'),
    maxTokens,
    sampling: {
      ...defaultSampling(),
      temperature,
      topK: parseNumber(values['top-k'], '--top-k', 0, true),
      topP,
      minP,
      seed,
      numTopLogprobs: 0,
    },
    ignoreEos: values['ignore-eos'],
    logprobs: values.logprobs,
    device: parseDevice(values.device),
    pageSize,
    ropeFrequencyRounding: parseRopeRounding(values['rope-frequency-rounding']),
    json: values.json,
  };
}

async function generate(args: GenerateArgs): Promise<{ tokenIds: number[]; logprobs: number[] }> {
  const numPositions = args.promptIds.length + args.maxTokens;
  const numPages = Math.ceil(numPositions / args.pageSize);
  await using executor = await Executor.open({
    modelDir: args.modelDir,
    device: args.device ?? 'cpu',
    pageSize: args.pageSize,
    numPages,
    ropeFrequencyRounding: args.ropeFrequencyRounding,
  });
  if (numPositions > executor.info.maxPositionEmbeddings) {
    throw new ConfigError(
      `prompt (${args.promptIds.length}) + max tokens (${args.maxTokens}) exceed the model's ${executor.info.maxPositionEmbeddings} positions`,
    );
  }
  const pageTable = Int32Array.from({ length: numPages }, (_, i) => i);
  const promptTokenIds = Int32Array.from(args.promptIds);
  const eos = new Set(executor.info.eosTokenIds);
  const tokenIds: number[] = [];
  const logprobs: number[] = [];
  let input = promptTokenIds;
  let startPos = 0;
  while (tokenIds.length < args.maxTokens) {
    const [out] = await executor.forward([
      {
        tokenIds: input,
        startPos,
        pageTable,
        sampleIndices: Int32Array.of(input.length - 1),
        sampling: args.sampling,
        promptTokenIds,
        outputTokenIds: Int32Array.from(tokenIds),
        targetIds: null,
        returnLogits: false,
        returnProbs: false,
      },
    ]);
    const sample = out?.samples[0];
    if (sample === undefined) throw new Error('the executor returned no sample');
    tokenIds.push(sample.tokenId);
    logprobs.push(sample.logprob);
    if (!args.ignoreEos && eos.has(sample.tokenId)) break;
    startPos += input.length;
    input = Int32Array.of(sample.tokenId);
  }
  return { tokenIds, logprobs };
}

export async function run(argv: string[]): Promise<number> {
  let args: GenerateArgs;
  try {
    args = parse(argv);
  } catch (err) {
    process.stderr.write(`tandem generate: ${err instanceof Error ? err.message : String(err)}\n${usage}\n`);
    return 2;
  }
  try {
    const { tokenIds, logprobs } = await generate(args);
    if (args.json) {
      const line = args.logprobs ? { token_ids: tokenIds, logprobs } : { token_ids: tokenIds };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    } else {
      process.stdout.write(`generated ${tokenIds.length} tokens: ${tokenIds.join(' ')}\n`);
      if (args.logprobs) process.stdout.write(`logprobs: ${logprobs.map((l) => l.toFixed(4)).join(' ')}\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tandem generate: ${err.message}\n`);
      return 2;
    }
    const name = err instanceof TandemError ? `${err.name}: ` : '';
    process.stderr.write(`tandem generate: ${name}${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
