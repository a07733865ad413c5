// `tandem worker --role unified|prefill|decode --model DIR ...`: the worker host
// (services/worker) with the prefill and decode roles (services/prefill, services/decode).
import { decodeRole } from '@tandem/decode';
import { prefillRole } from '@tandem/prefill';
import { runWorkerCommand } from '@tandem/worker';

export function run(argv: string[]): Promise<number> {
  return runWorkerCommand(argv, { prefill: prefillRole, decode: decodeRole });
}
