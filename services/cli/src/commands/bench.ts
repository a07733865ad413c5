// `tandem bench ...`: load generation against any OpenAI-compatible endpoint (see bench/).
import { benchMain } from '@tandem/bench';

export function run(argv: string[]): Promise<number> {
  return benchMain(argv);
}
