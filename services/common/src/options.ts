// The configuration layer: a command declares each option once (flag, environment variable,
// default, one line of doc), and gets from that declaration its parser (flag > environment >
// default, every value checked, a ConfigError naming the flag otherwise), its usage text and
// typed values. Tuning numbers are options like any other, so each is documented where it is set.
import { parseArgs } from 'node:util';
import { ConfigError } from './errors.ts';

interface BaseSpec {
  /** One line for the usage text. */
  doc: string;
  /** Environment variable read when the flag is absent. */
  env?: string;
}

export interface StringOption extends BaseSpec {
  type: 'string';
  default: string | null;
  /** The accepted values, when closed. */
  choices?: readonly string[];
  /** Placeholder in the usage text (default VALUE). */
  valueName?: string;
}

export interface IntOption extends BaseSpec {
  type: 'int';
  default: number | null;
  min?: number;
  max?: number;
}

export interface NumberOption extends BaseSpec {
  type: 'number';
  default: number | null;
  min?: number;
  max?: number;
}

export interface BooleanOption extends BaseSpec {
  type: 'boolean';
  default: boolean;
}

/** Repeatable (`--api-key a --api-key b`); the environment variable holds a comma-separated list. */
export interface ListOption extends BaseSpec {
  type: 'list';
  valueName?: string;
}

export type OptionSpec = StringOption | IntOption | NumberOption | BooleanOption | ListOption;

type StringValue<S extends StringOption> =
  | (S extends { choices: readonly (infer C)[] } ? C : string)
  | (S['default'] extends string ? never : null);

type ValueOf<S extends OptionSpec> = S extends StringOption
  ? StringValue<S>
  : S extends IntOption | NumberOption
    ? number | (S['default'] extends number ? never : null)
    : S extends BooleanOption
      ? boolean
      : string[];

export type OptionValues<S extends Record<string, OptionSpec>> = { [K in keyof S]: ValueOf<S[K]> };

export interface CommandOptions<S extends Record<string, OptionSpec>> {
  readonly specs: S;
  /** `usage: tandem <command> [options]` and one line per option. */
  readonly usage: string;
  /** Flags, then the environment, then the defaults. Throws ConfigError naming the flag. */
  parse(argv: readonly string[], env?: NodeJS.ProcessEnv): OptionValues<S> & { help: boolean };
}

/** Declares a command's options (`tandem <command>`; `synopsis` follows the command name). */
export function defineOptions<const S extends Record<string, OptionSpec>>(
  command: string,
  synopsis: string,
  specs: S,
): CommandOptions<S> {
  return {
    specs,
    usage: usageOf(command, synopsis, specs),
    parse: (argv, env = process.env) => parseOptions(specs, argv, env),
  };
}

function parseOptions<S extends Record<string, OptionSpec>>(
  specs: S,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): OptionValues<S> & { help: boolean } {
  const config: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, spec] of Object.entries(specs)) {
    config[name] = spec.type === 'boolean' ? { type: 'boolean' } : { type: 'string' };
    if (spec.type === 'list') config[name].multiple = true;
  }
  let parsed: Record<string, string | boolean | string[] | undefined>;
  try {
    parsed = parseArgs({ args: [...argv], options: config, strict: true, allowPositionals: false })
      .values as typeof parsed;
  } catch (cause) {
    throw new ConfigError(cause instanceof Error ? cause.message : String(cause), { cause });
  }
  const values: Record<string, unknown> = { help: parsed.help === true };
  for (const [name, spec] of Object.entries(specs)) {
    const flag = `--${name}`;
    const fromFlag = parsed[name];
    const fromEnv = spec.env === undefined ? undefined : nonEmpty(env[spec.env]);
    const source = fromFlag !== undefined ? flag : (spec.env ?? flag);
    switch (spec.type) {
      case 'boolean':
        values[name] =
          fromFlag === true ? true : fromEnv !== undefined ? parseBool(fromEnv, source) : spec.default;
        break;
      case 'list': {
        const list = Array.isArray(fromFlag) ? fromFlag : (fromEnv?.split(',') ?? []);
        values[name] = list.map((item) => item.trim()).filter((item) => item !== '');
        break;
      }
      default: {
        const text = typeof fromFlag === 'string' ? fromFlag : fromEnv;
        values[name] = text === undefined ? spec.default : parseValue(spec, text, source);
      }
    }
  }
  return values as OptionValues<S> & { help: boolean };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function parseBool(text: string, what: string): boolean {
  const lower = text.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(lower)) return true;
  if (['0', 'false', 'no', 'off'].includes(lower)) return false;
  throw new ConfigError(`${what} must be a boolean (1/0, true/false), got '${text}'`, { param: what });
}

function parseValue(
  spec: StringOption | IntOption | NumberOption,
  text: string,
  what: string,
): string | number {
  if (spec.type === 'string') {
    if (spec.choices !== undefined && !spec.choices.includes(text)) {
      throw new ConfigError(`${what} must be ${oneOf(spec.choices)}, got '${text}'`, {
        param: what,
      });
    }
    return text;
  }
  const value = spec.type === 'int' ? parseIntStrict(text, what) : parseNumberStrict(text, what);
  if (spec.min !== undefined && value < spec.min) {
    throw new ConfigError(`${what} must be >= ${spec.min}, got ${value}`, { param: what });
  }
  if (spec.max !== undefined && value > spec.max) {
    throw new ConfigError(`${what} must be <= ${spec.max}, got ${value}`, { param: what });
  }
  return value;
}

/** A base-10 integer, entirely (no '12abc'). `what` names the flag or variable in the error. */
export function parseIntStrict(
  text: string,
  what: string,
  range: { min?: number; max?: number } = {},
): number {
  if (!/^-?\d+$/.test(text.trim()))
    throw new ConfigError(`${what} must be an integer, got '${text}'`, { param: what });
  const value = Number(text.trim());
  if (!Number.isSafeInteger(value))
    throw new ConfigError(`${what} is out of range: ${text}`, { param: what });
  if (range.min !== undefined && value < range.min) {
    throw new ConfigError(`${what} must be >= ${range.min}, got ${value}`, { param: what });
  }
  if (range.max !== undefined && value > range.max) {
    throw new ConfigError(`${what} must be <= ${range.max}, got ${value}`, { param: what });
  }
  return value;
}

function parseNumberStrict(text: string, what: string): number {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(value)) {
    throw new ConfigError(`${what} must be a number, got '${text}'`, { param: what });
  }
  return value;
}

/** 'a, b or c' */
function oneOf(choices: readonly string[]): string {
  return choices.length === 1 ? choices[0]! : `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}`;
}

/** Words of `text` in lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

function usageOf(command: string, synopsis: string, specs: Record<string, OptionSpec>): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const value =
      spec.type === 'boolean'
        ? ''
        : spec.type === 'string' && spec.choices !== undefined
          ? ` ${spec.choices.join('|')}`
          : ` ${(spec.type === 'string' || spec.type === 'list' ? spec.valueName : undefined) ?? (spec.type === 'int' || spec.type === 'number' ? 'N' : 'VALUE')}`;
    const notes: string[] = [];
    if (spec.type !== 'list' && spec.default !== null && spec.default !== false)
      notes.push(`default ${spec.default}`);
    if (spec.env !== undefined) notes.push(`$${spec.env}`);
    if (spec.type === 'list') notes.push('repeatable');
    return {
      left: `  --${name}${value}`,
      right: `${spec.doc}${notes.length > 0 ? ` [${notes.join('; ')}]` : ''}`,
    };
  });
  const width = Math.min(40, Math.max(...rows.map((row) => row.left.length)) + 2);
  const indent = ' '.repeat(width);
  const lines = rows.map((row) => {
    const right = wrap(row.right, Math.max(40, 110 - width)).join(`\n${indent}`);
    return row.left.length + 2 > width
      ? `${row.left}\n${indent}${right}`
      : `${row.left.padEnd(width)}${right}`;
  });
  return `usage: tandem ${command} ${synopsis}\n\n${lines.join('\n')}\n  -h, --help${' '.repeat(Math.max(2, width - 12))}this text\n`;
}
