// `tandem router`: options (router-options.ts) -> RouterApp, until SIGINT / SIGTERM.
import { runCommand, untilSignal } from '@tandem/common';
import { RouterApp } from './router-app.ts';
import { routerOptions, routerOptionsFrom } from './router-options.ts';

export const routerUsage = routerOptions.usage;

export function runRouterCommand(argv: string[]): Promise<number> {
  return runCommand('router', routerOptions, argv, async (values, logger) => {
    const app = await RouterApp.start(routerOptionsFrom(values, logger));
    process.stdout.write(`tandem router: serving ${app.url}/v1\n`);
    const signal = await untilSignal(logger);
    logger.info('stopping', { signal });
    await app.close();
    return 0;
  });
}
