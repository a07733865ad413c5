// Command-line options of `tandem bench run|sweep` and their translation into a validated
// run configuration. Flag names follow SGLang's bench_serving where one exists.
import { parseArgs } from 'node:util';
import { BenchConfigError } from './errors.ts';
import type { Slo } from './metrics.ts';
import type { ModelShare, RunConfig } from './result.ts';
import type { WorkloadSpec } from './workload/types.ts';

export const RUN_OPTIONS = {
  'base-url': { type: 'string' },
  model: { type: 'string' },
  api: { type: 'string', default: 'completions' },
  endpoint: { type: 'string' },
  'api-key': { type: 'string' },
  workload: { type: 'string', default: 'random' },
  'num-prompts': { type: 'string', default: '100' },
  'input-len': { type: 'string', default: '256' },
  'output-len': { type: 'string', default: '32' },
  'range-ratio': { type: 'string', default: '1' },
  'sharegpt-output-len': { type: 'string' },
  'num-groups': { type: 'string', default: '16' },
  'prompts-per-group': { type: 'string', default: '8' },
  'system-prompt-len': { type: 'string', default: '512' },
  'question-len': { type: 'string', default: '64' },
  'shared-prefix-order': { type: 'string', default: 'shuffled' },
  'num-conversations': { type: 'string' },
  turns: { type: 'string', default: '4' },
  'think-time-ms': { type: 'string', default: '0' },
  'prompt-format': { type: 'string' },
  'vocab-size': { type: 'string', default: '4096' },
  'request-rate': { type: 'string', default: 'inf' },
  burstiness: { type: 'string', default: '1' },
  'max-concurrency': { type: 'string' },
  seed: { type: 'string', default: '0' },
  'warmup-requests': { type: 'string', default: '1' },
  'ignore-eos': { type: 'boolean', default: false },
  temperature: { type: 'string', default: '0' },
  'slo-ttft-ms': { type: 'string' },
  'slo-tpot-ms': { type: 'string' },
  'slo-e2e-ms': { type: 'string' },
  'timeout-s': { type: 'string', default: '600' },
  'extra-body': { type: 'string' },
  label: { type: 'string' },
  out: { type: 'string' },
  'plot-dir': { type: 'string' },
  quiet: { type: 'boolean', default: false },
  // sweep only
  rates: { type: 'string' },
  'out-dir': { type: 'string' },
} as const;

export type RawOptions = ReturnType<typeof parseRunArgs>['values'];

export function parseRunArgs(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: RUN_OPTIONS, allowPositionals: false, strict: true });
  } catch (cause) {
    throw new BenchConfigError((cause as Error).message, { cause });
  }
}

function num(raw: string | undefined, flag: string, check: (v: number) => boolean, what: string): number {
  const value = raw === 'inf' ? Number.POSITIVE_INFINITY : Number(raw);
  if (raw === undefined || raw === '' || Number.isNaN(value) || !check(value)) {
    throw new BenchConfigError(`--${flag} must be ${what} (got ${raw ?? 'nothing'})`);
  }
  return value;
}
const positiveInt = (raw: string | undefined, flag: string): number =>
  num(raw, flag, (v) => Number.isInteger(v) && v > 0, 'a positive integer');
const nonNegative = (raw: string | undefined, flag: string): number =>
  num(raw, flag, (v) => v >= 0, 'a number >= 0');
const optional = (raw: string | undefined, flag: string): number | null =>
  raw === undefined ? null : nonNegative(raw, flag);

function oneOf<T extends string>(raw: string, flag: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw))
    throw new BenchConfigError(`--${flag} must be one of ${allowed.join(', ')}`);
  return raw as T;
}

export function workloadSpec(o: RawOptions): WorkloadSpec {
  const type = oneOf(o.workload, 'workload', [
    'random',
    'sharegpt-like',
    'shared-prefix',
    'multi-turn',
  ] as const);
  const rangeRatio = num(o['range-ratio'], 'range-ratio', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  switch (type) {
    case 'random':
      return {
        type,
        numPrompts: positiveInt(o['num-prompts'], 'num-prompts'),
        inputLen: positiveInt(o['input-len'], 'input-len'),
        outputLen: positiveInt(o['output-len'], 'output-len'),
        rangeRatio,
      };
    case 'sharegpt-like':
      return {
        type,
        numPrompts: positiveInt(o['num-prompts'], 'num-prompts'),
        outputLen:
          o['sharegpt-output-len'] === undefined
            ? null
            : positiveInt(o['sharegpt-output-len'], 'sharegpt-output-len'),
      };
    case 'shared-prefix':
      return {
        type,
        numGroups: positiveInt(o['num-groups'], 'num-groups'),
        promptsPerGroup: positiveInt(o['prompts-per-group'], 'prompts-per-group'),
        systemPromptLen: positiveInt(o['system-prompt-len'], 'system-prompt-len'),
        questionLen: positiveInt(o['question-len'], 'question-len'),
        outputLen: positiveInt(o['output-len'], 'output-len'),
        order: oneOf(o['shared-prefix-order'], 'shared-prefix-order', ['shuffled', 'grouped'] as const),
      };
    case 'multi-turn':
      return {
        type,
        // Without --num-conversations, --num-prompts counts requests: that many turns in all.
        numConversations:
          o['num-conversations'] === undefined
            ? Math.ceil(positiveInt(o['num-prompts'], 'num-prompts') / positiveInt(o.turns, 'turns'))
            : positiveInt(o['num-conversations'], 'num-conversations'),
        turnsPerConversation: positiveInt(o.turns, 'turns'),
        inputLen: positiveInt(o['input-len'], 'input-len'),
        outputLen: positiveInt(o['output-len'], 'output-len'),
        rangeRatio,
      };
  }
}

export type RunSettings = {
  config: RunConfig;
  slo: Slo;
  vocabSize: number;
  apiKey: string | null;
  timeoutMs: number;
  thinkTimeMs: number;
  extraBody: Record<string, unknown>;
};

/** Everything but the model name, which may have to be asked from the server. */
export function runSettings(o: RawOptions, requestRatePerS: number, model: string): RunSettings {
  const baseUrl = o['base-url'];
  if (baseUrl === undefined)
    throw new BenchConfigError('--base-url is required (e.g. http://127.0.0.1:8000)');
  try {
    new URL(baseUrl);
  } catch (cause) {
    throw new BenchConfigError(`--base-url ${baseUrl} is not a URL`, { cause });
  }
  const api = oneOf(o.api, 'api', ['completions', 'chat'] as const);
  const workload = workloadSpec(o);
  const defaultFormat = api === 'chat' || workload.type === 'multi-turn' ? 'words' : 'token-ids';
  const promptFormat = oneOf(o['prompt-format'] ?? defaultFormat, 'prompt-format', [
    'token-ids',
    'words',
  ] as const);
  if (promptFormat === 'token-ids' && (api === 'chat' || workload.type === 'multi-turn')) {
    throw new BenchConfigError(
      'token-id prompts need --api completions and a single-turn workload; use --prompt-format words',
    );
  }
  let extraBody: Record<string, unknown> = {};
  if (o['extra-body'] !== undefined) {
    try {
      extraBody = JSON.parse(o['extra-body']) as Record<string, unknown>;
    } catch (cause) {
      throw new BenchConfigError('--extra-body must be a JSON object', { cause });
    }
  }
  const maxConcurrency =
    o['max-concurrency'] === undefined ? null : positiveInt(o['max-concurrency'], 'max-concurrency');
  return {
    config: {
      label: o.label ?? `${workload.type}@${Number.isFinite(requestRatePerS) ? requestRatePerS : 'inf'}`,
      baseUrl,
      endpoint: o.endpoint ?? (api === 'chat' ? '/v1/chat/completions' : '/v1/completions'),
      api,
      model,
      models: parseModelMix(model),
      workload,
      promptFormat,
      seed: num(o.seed, 'seed', (v) => Number.isInteger(v), 'an integer'),
      requestRatePerS: Number.isFinite(requestRatePerS) ? requestRatePerS : null,
      burstiness: num(o.burstiness, 'burstiness', (v) => v > 0 && Number.isFinite(v), 'a number > 0'),
      maxConcurrency,
      ignoreEos: o['ignore-eos'],
      temperature: nonNegative(o.temperature, 'temperature'),
      warmupRequests: num(
        o['warmup-requests'],
        'warmup-requests',
        (v) => Number.isInteger(v) && v >= 0,
        'an integer >= 0',
      ),
    },
    slo: {
      ttftMs: optional(o['slo-ttft-ms'], 'slo-ttft-ms'),
      tpotMs: optional(o['slo-tpot-ms'], 'slo-tpot-ms'),
      e2eMs: optional(o['slo-e2e-ms'], 'slo-e2e-ms'),
    },
    vocabSize: num(o['vocab-size'], 'vocab-size', (v) => Number.isInteger(v) && v > 32, 'an integer > 32'),
    apiKey: o['api-key'] ?? process.env.OPENAI_API_KEY ?? null,
    timeoutMs: positiveInt(o['timeout-s'], 'timeout-s') * 1000,
    thinkTimeMs: nonNegative(o['think-time-ms'], 'think-time-ms'),
    extraBody,
  };
}

/** `--model a` or a mix `a:3,b:1` / `a,b` (equal shares): each conversation goes to one model. */
export function parseModelMix(raw: string): ModelShare[] {
  const shares = raw.split(',').map((part): ModelShare => {
    const [name = '', weight] = part.trim().split(':');
    if (name === '') throw new BenchConfigError(`--model ${raw}: empty model name`);
    return {
      name,
      weight:
        weight === undefined ? 1 : num(weight, 'model', (v) => v > 0 && Number.isFinite(v), 'a weight > 0'),
    };
  });
  if (new Set(shares.map((s) => s.name)).size !== shares.length)
    throw new BenchConfigError(`--model ${raw}: a model is named twice`);
  return shares;
}

export function requestRate(raw: string): number {
  return num(raw, 'request-rate', (v) => v > 0, 'a rate > 0 or inf');
}
