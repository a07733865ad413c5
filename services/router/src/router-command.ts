// `tandem router`: options (router-options.ts) -> RouterApp, until SIGINT / SIGTERM. With
// --processes N the command forks N such routers sharing the port (process-group.ts).
import cluster from 'node:cluster';
import { runCommand, untilSignal } from '@tandem/common';
import { processPeers, reportReady, runProcessGroup } from './process-group.ts';
import { RouterApp } from './router-app.ts';
import { routerOptions, routerOptionsFrom } from './router-options.ts';

export const routerUsage = routerOptions.usage;

export function runRouterCommand(argv: string[]): Promise<number> {
  return runCommand('router', routerOptions, argv, async (values, logger) => {
    if (values.processes > 1 && cluster.isPrimary) {
      return runProcessGroup(values.processes, logger, untilSignal(logger));
    }
    const peers = processPeers();
    const options = routerOptionsFrom(
      values,
      peers === null ? logger : logger.child({ process: peers.index }),
    );
    if (peers !== null) {
      options.replicaId = `${options.replicaId ?? `router-${process.ppid}`}-p${peers.index}`;
      options.processGroup = peers;
    }
    const app = await RouterApp.start(options);
    if (peers === null) process.stdout.write(`tandem router: serving ${app.url}/v1\n`);
    else reportReady(app.url);
    const signal = await untilSignal(logger);
    logger.info('stopping', { signal });
    await app.close();
    // The IPC channel to the primary would keep the process alive.
    cluster.worker?.disconnect();
    return 0;
  });
}
