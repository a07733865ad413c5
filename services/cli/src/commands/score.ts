// `tandem score`: teacher-forced log-probabilities of a sequence.
//   tandem score --model DIR --ids 5,9,13,... --json
// prints {"logprobs":[...]} where entry i is log p(ids[i+1] | ids[0..i]).
import { parseArgs } from 'node:util';
import { TandemError } from '@tandem/common';
import { defaultSampling, Executor, InvalidBatchError } from '@tandem/executor';
import { parseDevice, parseIds, parseNumber, parseRopeRounding } from './generate.ts';

const usage =
  'usage: tandem score --model DIR --ids 5,9,13,... [--device cpu|cuda:N|auto] [--page-size 16] [--rope-frequency-rounding none|stored-dtype] [--json]';

export async function run(argv: string[]): Promise<number> {
  let modelDir: string;
  let ids: number[];
  let device: ReturnType<typeof parseDevice>;
  let pageSize: number;
  let ropeFrequencyRounding: 'none' | 'stored-dtype';
  let json: boolean;
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        model: { type: 'string' },
        ids: { type: 'string' },
        device: { type: 'string' },
        'page-size': { type: 'string' },
        'rope-frequency-rounding': { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
    if (values.model === undefined) throw new Error('--model DIR is required');
    if (values.ids === undefined) throw new Error('--ids is required');
    modelDir = values.model;
    ids = parseIds(values.ids, '--ids');
    if (ids.length < 2) throw new Error('--ids needs at least two ids');
    device = parseDevice(values.device);
    pageSize = parseNumber(values['page-size'], '--page-size', 16, true);
    if (pageSize < 1) throw new Error('--page-size must be at least 1');
    ropeFrequencyRounding = parseRopeRounding(values['rope-frequency-rounding']);
    json = values.json;
  } catch (err) {
    process.stderr.write(`tandem score: ${err instanceof Error ? err.message : String(err)}\n${usage}\n`);
    return 2;
  }
  try {
    const numPages = Math.ceil(ids.length / pageSize);
    await using executor = await Executor.open({
      modelDir,
      device: device ?? 'cpu',
      pageSize,
      numPages,
      ropeFrequencyRounding,
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
    if (json) process.stdout.write(`${JSON.stringify({ logprobs })}\n`);
    else process.stdout.write(`${logprobs.map((l, i) => `${ids[i + 1]}\t${l.toFixed(6)}`).join('\n')}\n`);
    return 0;
  } catch (err) {
    const name = err instanceof TandemError ? `${err.name}: ` : '';
    process.stderr.write(`tandem score: ${name}${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof InvalidBatchError ? 2 : 1;
  }
}
