// The tool-call formats the router knows: how a model writes a call (the parser's syntax) and
// the grammar that makes it write calls (tool_choice required / a named function) with the
// constrained decoder. Which one a model uses comes from its chat template (or a flag).
//   hermes       Hermes 2 Pro, Qwen 2.5 / 3: <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>,
//                several in a row separated by a newline, after optional content.
//   llama3_json  Llama 3.1 / 3.2 / 3.3 JSON tool calling: {"name": ..., "parameters": {...}}, the
//                whole output, several separated by "; " (optionally after <|python_tag|>).
import type { ConstraintSpec } from '@tandem/structured';
import type { CallSyntax } from './tool-call-parser.ts';
import type { ToolDefinition } from './tool-request.ts';

export const toolCallFormatNames = ['hermes', 'llama3_json'] as const;
export type ToolCallFormatName = (typeof toolCallFormatNames)[number];

export interface ToolCallFormat {
  readonly name: ToolCallFormatName;
  readonly syntax: CallSyntax;
  /** The grammar text around calls: one call of function rule `fn`, and how calls are joined. */
  readonly open: string;
  readonly close: string;
  readonly separator: string;
  /** The key the format writes arguments under. */
  readonly argumentsKey: string;
}

const formats: Record<ToolCallFormatName, ToolCallFormat> = {
  hermes: {
    name: 'hermes',
    syntax: {
      layout: { type: 'tagged', open: '<tool_call>', close: '</tool_call>' },
      argumentKeys: ['arguments', 'parameters'],
    },
    open: '<tool_call>\n',
    close: '\n</tool_call>',
    separator: '\n',
    argumentsKey: 'arguments',
  },
  llama3_json: {
    name: 'llama3_json',
    syntax: {
      layout: { type: 'leading', prefixes: ['<|python_tag|>'], separator: ';' },
      argumentKeys: ['parameters', 'arguments'],
    },
    open: '',
    close: '',
    separator: '; ',
    argumentsKey: 'parameters',
  },
};

export function toolCallFormat(name: ToolCallFormatName): ToolCallFormat {
  return formats[name];
}

/** Whether a chat template renders the request's tools at all (it reads the `tools` variable). */
export function templateRendersTools(source: string | null): boolean {
  return source !== null && /\btools\b/.test(source);
}

/**
 * The format a chat template writes calls in: Hermes' tags, else Llama 3's JSON (its
 * <|python_tag|> / ipython role / "parameters"), else Hermes (the common default); null when the
 * template renders no tools.
 */
export function detectToolCallFormat(source: string | null): ToolCallFormat | null {
  if (source === null || !templateRendersTools(source)) return null;
  if (source.includes('<tool_call>')) return formats.hermes;
  if (source.includes('<|python_tag|>') || source.includes('ipython') || source.includes('"parameters"'))
    return formats.llama3_json;
  return formats.hermes;
}

/** A JSON string literal inside a grammar string literal. */
function grammarLiteral(text: string): string {
  return JSON.stringify(text);
}

/** Arguments schema of a tool: its parameters, or an empty object for a function that takes none. */
export function argumentsSchema(tool: ToolDefinition): Record<string, unknown> {
  return tool.parameters ?? { type: 'object', properties: {}, additionalProperties: false };
}

/**
 * The constraint that makes the output tool calls: one (`parallel` false, or a named function)
 * or several, of `tools` (indices into the request's tools, for error params). `schemas`
 * overrides a tool's arguments schema (a non-strict tool whose schema cannot be enforced).
 */
export function toolCallConstraint(
  format: ToolCallFormat,
  tools: readonly { tool: ToolDefinition; index: number }[],
  parallel: boolean,
  schemas: ReadonlyMap<number, unknown> = new Map(),
): ConstraintSpec {
  const lines: string[] = [];
  lines.push(parallel ? `root ::= call (${grammarLiteral(format.separator)} call)*` : 'root ::= call');
  const call = [
    format.open === '' ? null : grammarLiteral(format.open),
    `(${tools.map(({ index }) => `fn${index}`).join(' | ')})`,
    format.close === '' ? null : grammarLiteral(format.close),
  ];
  lines.push(`call ::= ${call.filter((part) => part !== null).join(' ')}`);
  const grammarSchemas: Record<string, unknown> = {};
  const schemaParams: Record<string, string> = {};
  for (const { tool, index } of tools) {
    const head = `{"name": "${tool.name}", "${format.argumentsKey}": `;
    lines.push(`fn${index} ::= ${grammarLiteral(head)} args${index} "}"`);
    grammarSchemas[`args${index}`] = schemas.get(index) ?? argumentsSchema(tool);
    schemaParams[`args${index}`] = `tools.${index}.function.parameters`;
  }
  return {
    type: 'grammar',
    grammar: lines.join('\n'),
    schemas: grammarSchemas,
    schemaParams,
    param: 'tools',
  };
}
