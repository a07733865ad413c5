// `tandem router --model DIR --port 8000 [--policy cache_aware] ...` (services/router does the work).
import { runRouterCommand } from '@tandem/router';

export function run(argv: string[]): Promise<number> {
  return runRouterCommand(argv);
}
