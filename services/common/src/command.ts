// How every long-running `tandem` command starts and fails the same way: parse its declared
// options (usage and exit 2 on a bad flag), --help, the logger at --log-level, then run; a
// ConfigError is exit 2 with its message, any other failure exit 1 with the error's name. Traces
// are exported when the OTEL_* environment asks for them (telemetry/tracing.ts), flushed on exit.
import { ConfigError, TandemError } from './errors.ts';
import { Logger, type LogLevel } from './logger.ts';
import type { CommandOptions, OptionSpec, OptionValues } from './options.ts';
import { startTracing } from './telemetry/tracing.ts';

/** The option every command has (spread into its declaration). */
export const logLevelOption = {
  'log-level': {
    type: 'string',
    choices: ['debug', 'info', 'warn', 'error'],
    default: 'info',
    env: 'LOG_LEVEL',
    doc: 'log threshold (debug logs every routing decision)',
  },
} as const satisfies Record<string, OptionSpec>;

export async function runCommand<S extends Record<string, OptionSpec> & typeof logLevelOption>(
  name: string,
  options: CommandOptions<S>,
  argv: readonly string[],
  run: (values: OptionValues<S>, logger: Logger) => Promise<number>,
  /** The service name its traces carry (default tandem-<name>; OTEL_SERVICE_NAME wins). */
  serviceName: (values: OptionValues<S>) => string = () => `tandem-${name}`,
): Promise<number> {
  let values: OptionValues<S> & { help: boolean };
  try {
    values = options.parse(argv);
  } catch (error) {
    process.stderr.write(`tandem ${name}: ${messageOf(error)}\n\n${options.usage}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(options.usage);
    return 0;
  }
  const logger = new Logger({ level: values['log-level'] as LogLevel, fields: { service: name } });
  let stopTracing = async (): Promise<void> => {};
  try {
    stopTracing = await startTracing(serviceName(values), logger);
    return await run(values, logger);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`tandem ${name}: ${error.message}\n`);
      return 2;
    }
    logger.error(`${name} failed`, { error });
    process.stderr.write(
      `tandem ${name}: ${error instanceof TandemError ? `${error.name}: ` : ''}${messageOf(error)}\n`,
    );
    return 1;
  } finally {
    await stopTracing();
  }
}

/** Resolves on the first SIGTERM / SIGINT; a second SIGINT exits at once (130). */
export function untilSignal(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (received: NodeJS.Signals): void => {
      if (!stopping) {
        stopping = true;
        resolve(received);
      } else if (received === 'SIGINT') {
        process.exit(130);
      } else {
        logger.info('already stopping', { signal: received });
      }
    };
    // Handlers stay installed while draining, so a repeated SIGTERM does not kill the process.
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
