// `tandem score`: teacher-forced log-probabilities of a sequence.
//   tandem score --model DIR --ids 5,9,13,... --json
// prints {"logprobs":[...]} where entry i is log p(ids[i+1] | ids[0..i]).
import { ConfigError, defineOptions, logLevelOption, runCommand } from '@tandem/common';
import { defaultSampling, Executor, parseDevice } from '@tandem/executor';
import { modelOptions, parseIds, requireModel } from './model-options.ts';

const scoreOptions = defineOptions('score', '--model DIR --ids 5,9,13,... [options]', {
  ...modelOptions,
  ids: { type: 'string', default: null, valueName: 'IDS', doc: 'the sequence as token ids (required)' },
  ...logLevelOption,
});

export function run(argv: string[]): Promise<number> {
  return runCommand('score', scoreOptions, argv, async (values) => {
    const modelDir = requireModel(values.model);
    const ids = parseIds(values.ids, '--ids');
    if (ids.length < 2) throw new ConfigError('--ids needs at least two ids', { param: '--ids' });
    const pageSize = values['page-size'];
    const numPages = Math.ceil(ids.length / pageSize);
    await using executor = await Executor.open({
      modelDir,
      device: parseDevice(values.device),
      pageSize,
      numPages,
      ropeFrequencyRounding: values['rope-frequency-rounding'],
    });
    const [out] = await executor.forward([
      {
        tokenIds: Int32Array.from(ids.slice(0, -1)),
        startPos: 0,
        pageTable: Int32Array.from({ length: numPages }, (_, i) => i),
        sampleIndices: new Int32Array(0),
        sampling: defaultSampling(),
        promptTokenIds: null,
        outputTokenIds: null,
        targetIds: Int32Array.from(ids.slice(1)),
        returnLogits: false,
        returnProbs: false,
      },
    ]);
    const logprobs = Array.from(out?.targetLogprobs ?? []);
    if (values.json) process.stdout.write(`${JSON.stringify({ logprobs })}\n`);
    else process.stdout.write(`${logprobs.map((l, i) => `${ids[i + 1]}\t${l.toFixed(6)}`).join('\n')}\n`);
    return 0;
  });
}
