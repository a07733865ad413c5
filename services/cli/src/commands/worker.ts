// `tandem worker --role unified --model DIR --port P ...`: see services/decode/src/worker-command.ts.
import { runWorkerCommand } from '@tandem/decode';

export function run(argv: string[]): Promise<number> {
  return runWorkerCommand(argv);
}
