// Structured logging: one JSON object per line on stderr, with a level, a message and fields
// (a child logger carries e.g. the request id). LOG_LEVEL picks the threshold (default info).

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function isLogLevel(value: string): value is LogLevel {
  return Object.hasOwn(levelRank, value);
}

export interface LoggerOptions {
  level?: LogLevel;
  fields?: LogFields;
  /** Where lines go (default process.stderr). */
  write?: (line: string) => void;
}

export class Logger {
  readonly level: LogLevel;
  readonly #fields: LogFields;
  readonly #write: (line: string) => void;

  constructor(options: LoggerOptions = {}) {
    const envLevel = process.env.LOG_LEVEL ?? '';
    this.level = options.level ?? (isLogLevel(envLevel) ? envLevel : 'info');
    this.#fields = options.fields ?? {};
    this.#write = options.write ?? ((line) => process.stderr.write(line));
  }

  /** A logger that adds `fields` to every line (e.g. `{ requestId }`). */
  child(fields: LogFields): Logger {
    return new Logger({ level: this.level, fields: { ...this.#fields, ...fields }, write: this.#write });
  }

  enabled(level: LogLevel): boolean {
    return levelRank[level] >= levelRank[this.level];
  }

  debug(message: string, fields?: LogFields): void {
    this.#log('debug', message, fields);
  }

  info(message: string, fields?: LogFields): void {
    this.#log('info', message, fields);
  }

  warn(message: string, fields?: LogFields): void {
    this.#log('warn', message, fields);
  }

  error(message: string, fields?: LogFields): void {
    this.#log('error', message, fields);
  }

  #log(level: LogLevel, message: string, fields: LogFields | undefined): void {
    if (!this.enabled(level)) return;
    const record = { time: new Date().toISOString(), level, msg: message, ...this.#fields, ...fields };
    this.#write(`${JSON.stringify(record, jsonReplacer)}\n`);
  }
}

/** bigint as a decimal string, Error as { name, message, code, cause }. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, code: code ?? null, cause: value.cause ?? null };
  }
  return value;
}

/** The process-wide default logger. */
export const logger = new Logger();
