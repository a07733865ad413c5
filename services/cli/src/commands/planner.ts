// `tandem planner --prometheus URL --prefill-deployment P --decode-deployment D ...`
// (services/planner does the work).
import { runPlannerCommand } from '@tandem/planner';

export function run(argv: string[]): Promise<number> {
  return runPlannerCommand(argv);
}
