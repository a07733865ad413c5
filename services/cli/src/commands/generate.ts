// `tandem generate`: run a checkpoint on token ids and print the generated ids.
//   tandem generate --model DIR --prompt-ids 5,9,13 --max-tokens 24 --temperature 0 --ignore-eos --json
// prints {"token_ids":[...]} (the generated ids only; with --logprobs also "logprobs").
import {
  ConfigError,
  defineOptions,
  InternalError,
  logLevelOption,
  type OptionValues,
  runCommand,
} from '@tandem/common';
import {
  defaultSampling,
  Executor,
  type ExecutorOptions,
  parseDevice,
  type SamplingParams,
} from '@tandem/executor';
import { modelOptions, parseIds, requireModel } from './model-options.ts';

const generateOptions = defineOptions('generate', '--model DIR --prompt-ids 5,9,13 [options]', {
  ...modelOptions,
  'prompt-ids': {
    type: 'string',
    default: null,
    valueName: 'IDS',
    doc: 'the prompt as token ids (required)',
  },
  'max-tokens': { type: 'int', default: 16, min: 1, doc: 'tokens to generate' },
  temperature: { type: 'number', default: 1, min: 0, doc: '0: greedy' },
  'top-k': { type: 'int', default: 0, min: -1, doc: '0: off' },
  'top-p': { type: 'number', default: 1, min: Number.MIN_VALUE, max: 1, doc: '1: off' },
  'min-p': { type: 'number', default: 0, min: 0, max: 1, doc: '0: off' },
  seed: { type: 'int', default: null, min: 0, doc: 'seeded sampling (default a fresh draw)' },
  'ignore-eos': { type: 'boolean', default: false, doc: 'generate max-tokens even past EOS' },
  logprobs: { type: 'boolean', default: false, doc: "print each token's log-probability" },
  ...logLevelOption,
});

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

function argsOf(values: OptionValues<typeof generateOptions.specs>): GenerateArgs {
  return {
    modelDir: requireModel(values.model),
    promptIds: parseIds(values['prompt-ids'], '--prompt-ids'),
    maxTokens: values['max-tokens'],
    sampling: {
      ...defaultSampling(),
      temperature: values.temperature,
      topK: values['top-k'],
      topP: values['top-p'],
      minP: values['min-p'],
      seed: values.seed,
      numTopLogprobs: 0,
    },
    ignoreEos: values['ignore-eos'],
    logprobs: values.logprobs,
    device: parseDevice(values.device),
    pageSize: values['page-size'],
    ropeFrequencyRounding: values['rope-frequency-rounding'],
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
    if (sample === undefined) throw new InternalError('the executor returned no sample');
    tokenIds.push(sample.tokenId);
    logprobs.push(sample.logprob);
    if (!args.ignoreEos && eos.has(sample.tokenId)) break;
    startPos += input.length;
    input = Int32Array.of(sample.tokenId);
  }
  return { tokenIds, logprobs };
}

export function run(argv: string[]): Promise<number> {
  return runCommand('generate', generateOptions, argv, async (values) => {
    const args = argsOf(values);
    const { tokenIds, logprobs } = await generate(args);
    if (args.json) {
      const line = args.logprobs ? { token_ids: tokenIds, logprobs } : { token_ids: tokenIds };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    } else {
      process.stdout.write(`generated ${tokenIds.length} tokens: ${tokenIds.join(' ')}\n`);
      if (args.logprobs) process.stdout.write(`logprobs: ${logprobs.map((l) => l.toFixed(4)).join(' ')}\n`);
    }
    return 0;
  });
}
