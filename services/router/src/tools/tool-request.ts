// The tool fields of a chat request: `tools`, `tool_choice`, `parallel_tool_calls`, and the tool
// parts of messages (an assistant's `tool_calls`, a `tool` message's `tool_call_id`), checked
// and normalized, each failure naming its field.
import { UnsupportedError } from '../errors.ts';
import { fail, isObject, type JsonObject, optional, readBoolean, typeName } from '../openai/fields.ts';

/** OpenAI's rule for function names (also what keeps them safe inside grammar literals). */
const functionNamePattern = /^[A-Za-z0-9_-]{1,64}$/;
const maxTools = 128;

export interface ToolDefinition {
  name: string;
  description: string | null;
  /** The JSON Schema of the arguments; null: the function takes none. */
  parameters: JsonObject | null;
  /** OpenAI strict mode: the arguments must follow the schema exactly. */
  strict: boolean;
  /** As the client sent it ({type: 'function', function: {...}}), for the chat template. */
  raw: JsonObject;
}

export type ToolChoice =
  | { type: 'none' }
  | { type: 'auto' }
  | { type: 'required' }
  | { type: 'function'; name: string };

export interface ToolsRequest {
  tools: ToolDefinition[];
  choice: ToolChoice;
  /** Several calls in one turn may be made (parallel_tool_calls, default true). */
  parallel: boolean;
}

/** A call in an earlier assistant message, for the template (arguments parsed, as vLLM does). */
export interface MessageToolCall {
  id: string;
  name: string;
  arguments: unknown;
}

function readTool(value: unknown, param: string): ToolDefinition {
  if (!isObject(value)) fail(param, `'${param}' must be an object`);
  if (value.type !== 'function') {
    throw new UnsupportedError(`tools of type '${String(value.type)}' are not supported`, `${param}.type`);
  }
  const fn = value.function;
  if (!isObject(fn)) fail(`${param}.function`, `'${param}.function' must be an object`);
  if (typeof fn.name !== 'string' || !functionNamePattern.test(fn.name)) {
    fail(`${param}.function.name`, `'${param}.function.name' must be 1 to 64 letters, digits, '_' or '-'`);
  }
  const description = fn.description ?? null;
  if (description !== null && typeof description !== 'string')
    fail(`${param}.function.description`, `'${param}.function.description' must be a string`);
  const parameters = fn.parameters ?? null;
  if (parameters !== null && !isObject(parameters))
    fail(`${param}.function.parameters`, `'${param}.function.parameters' must be a JSON Schema object`);
  const strict = fn.strict ?? false;
  if (typeof strict !== 'boolean')
    fail(`${param}.function.strict`, `'${param}.function.strict' must be a boolean`);
  return { name: fn.name, description, parameters, strict, raw: value };
}

function readChoice(body: JsonObject, tools: readonly ToolDefinition[]): ToolChoice {
  const value = optional(body, 'tool_choice');
  if (value === null) return tools.length > 0 ? { type: 'auto' } : { type: 'none' };
  if (value === 'none' || value === 'auto' || value === 'required') {
    if (value === 'required' && tools.length === 0)
      fail('tool_choice', "'tool_choice' 'required' needs 'tools'");
    return { type: value };
  }
  if (!isObject(value) || value.type !== 'function' || !isObject(value.function)) {
    fail(
      'tool_choice',
      '\'tool_choice\' must be \'none\', \'auto\', \'required\' or {"type": "function", "function": {"name": ...}}',
    );
  }
  const name = value.function.name;
  if (typeof name !== 'string')
    fail('tool_choice.function.name', "'tool_choice.function.name' must be a string");
  if (!tools.some((tool) => tool.name === name)) {
    fail(
      'tool_choice.function.name',
      `'tool_choice' names the function '${name}', which 'tools' does not define`,
    );
  }
  return { type: 'function', name };
}

/** The request's tools, choice and parallelism (no tools: an empty list and choice none). */
export function readToolsRequest(body: JsonObject): ToolsRequest {
  if (optional(body, 'functions') !== null)
    throw new UnsupportedError("'functions' is deprecated and not supported: use 'tools'", 'functions');
  if (optional(body, 'function_call') !== null)
    throw new UnsupportedError(
      "'function_call' is deprecated and not supported: use 'tool_choice'",
      'function_call',
    );
  const value = optional(body, 'tools');
  let tools: ToolDefinition[] = [];
  if (value !== null) {
    if (!Array.isArray(value)) fail('tools', `'tools' must be a list, got ${typeName(value)}`);
    if (value.length > maxTools) fail('tools', `'tools' takes at most ${maxTools} functions`);
    tools = value.map((tool, i) => readTool(tool, `tools.${i}`));
    const names = new Set<string>();
    tools.forEach((tool, i) => {
      if (names.has(tool.name)) fail(`tools.${i}.function.name`, `function '${tool.name}' is defined twice`);
      names.add(tool.name);
    });
  }
  return {
    tools,
    choice: readChoice(body, tools),
    parallel: readBoolean(body, 'parallel_tool_calls', true),
  };
}

/** An assistant message's `tool_calls`. */
export function readMessageToolCalls(value: unknown, param: string): MessageToolCall[] {
  if (!Array.isArray(value)) fail(param, `'${param}' must be a list`);
  return value.map((call, i): MessageToolCall => {
    const at = `${param}.${i}`;
    if (!isObject(call)) fail(at, `'${at}' must be an object`);
    if (typeof call.id !== 'string') fail(`${at}.id`, `'${at}.id' must be a string`);
    if (call.type !== undefined && call.type !== 'function')
      fail(`${at}.type`, `'${at}.type' must be 'function'`);
    const fn = call.function;
    if (!isObject(fn)) fail(`${at}.function`, `'${at}.function' must be an object`);
    if (typeof fn.name !== 'string') fail(`${at}.function.name`, `'${at}.function.name' must be a string`);
    let args: unknown = fn.arguments ?? {};
    if (typeof args === 'string') {
      try {
        args = JSON.parse(args);
      } catch {
        fail(`${at}.function.arguments`, `'${at}.function.arguments' must be a JSON object`);
      }
    }
    return { id: call.id, name: fn.name, arguments: args };
  });
}
